"""Unpacking mounted archives and undoing compressed files, safely, with well-kept libraries.

``tar`` archives go through :mod:`tarfile` with its ``data`` filter, which
refuses members that would land outside the target (absolute names, ``..``,
links pointing out), device files and odd permissions; ``zip`` archives
through :mod:`zipfile`, each member's name checked the same way before
anything is written. Compression: gzip, bzip2 and xz from the standard
library, zstd (``zstandard``), brotli (``brotli``), lz4 frames (``lz4``) and
zlib streams. A bad archive raises :class:`UnpackError`, whose message is
what the task's log says.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO

import brotli
import lz4.frame
import zstandard

#: What a compressed file may be, by generic-worker's names.
COMPRESSION_FORMATS = frozenset({"gz", "bz2", "xz", "zst", "br", "lz4", "zz"})
#: What an archive may be, by generic-worker's names.
ARCHIVE_FORMATS = frozenset({"zip", "tar"} | {f"tar.{c}" for c in COMPRESSION_FORMATS})


class UnpackError(Exception):
    """The content could not be unpacked or decompressed."""


class _Inflating(io.RawIOBase):
    """A readable stream of what a chunk-by-chunk decompressor makes of another stream."""

    def __init__(self, source: IO[bytes], decompress: Callable[[bytes], bytes], finish: Callable[[], bytes]):
        self._source = source
        self._decompress = decompress
        self._finish = finish
        self._pending = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._ended:
            chunk = self._source.read(65536)
            if chunk:
                self._pending = self._decompress(chunk)
            else:
                self._pending, self._ended = self._finish(), True
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _brotli(source: IO[bytes]) -> IO[bytes]:
    inflater = brotli.Decompressor()

    def finish() -> bytes:
        if not inflater.is_finished():
            raise UnpackError("the brotli stream is truncated")
        return b""

    return io.BufferedReader(_Inflating(source, inflater.process, finish))


def _zlib(source: IO[bytes]) -> IO[bytes]:
    inflater = zlib.decompressobj()

    def finish() -> bytes:
        rest = inflater.flush()
        if not inflater.eof:
            raise UnpackError("the zlib stream is truncated")
        return rest

    return io.BufferedReader(_Inflating(source, inflater.decompress, finish))


class _ZstdFrames:
    """zstd data of one or more frames, each decompressed to its end (a truncated one is an error)."""

    def __init__(self) -> None:
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame = self._decompressor.decompressobj()

    def decompress(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            if self._frame.eof:
                self._frame = self._decompressor.decompressobj()
            out.append(self._frame.decompress(chunk))
            chunk = self._frame.unused_data if self._frame.eof else b""
        return b"".join(out)

    def finish(self) -> bytes:
        if not self._frame.eof:
            raise UnpackError("the zstd stream is truncated")
        return b""


def _zstd(source: IO[bytes]) -> IO[bytes]:
    frames = _ZstdFrames()
    return io.BufferedReader(_Inflating(source, frames.decompress, frames.finish))


_OPENERS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    "gz": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "bz2": lambda f: bz2.BZ2File(f, mode="rb"),
    "xz": lambda f: lzma.LZMAFile(f, mode="rb"),
    "zst": _zstd,
    "lz4": lambda f: lz4.frame.LZ4FrameFile(f, mode="rb"),
    "br": _brotli,
    "zz": _zlib,
}

#: What the libraries raise on corrupt or truncated data.
_DATA_ERRORS = (
    OSError, EOFError, ValueError, lzma.LZMAError, zlib.error, zstandard.ZstdError, RuntimeError,
    tarfile.TarError, zipfile.BadZipFile, brotli.error,
)


def decompress_file(source: Path, compression: str | None, target: Path) -> None:
    """Write ``source``, decompressed from ``compression`` (None: as it is), to ``target``."""
    try:
        with source.open("rb") as raw, target.open("wb") as out:
            if compression is None:
                shutil.copyfileobj(raw, out)
                return
            with _OPENERS[compression](raw) as data:
                shutil.copyfileobj(data, out, 1 << 20)
    except UnpackError:
        raise
    except _DATA_ERRORS as e:
        raise UnpackError(f"cannot decompress {compression} content: {e}") from None


def unpack_archive(source: Path, archive_format: str, target: Path) -> int:
    """Unpack the archive ``source`` into the directory ``target``; returns how many members it had."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        if archive_format == "zip":
            return _unzip(source, target)
        compression = archive_format.removeprefix("tar").lstrip(".") or None
        with source.open("rb") as raw:
            data = raw if compression is None else _OPENERS[compression](raw)
            with data, tarfile.open(fileobj=data, mode="r|") as archive:
                count = 0
                for member in archive:
                    archive.extract(member, target, filter="data")
                    count += 1
                return count
    except UnpackError:
        raise
    except tarfile.FilterError as e:
        raise UnpackError(f"refused to unpack the {archive_format} archive: {e}") from None
    except _DATA_ERRORS as e:
        raise UnpackError(f"cannot unpack the {archive_format} archive: {e}") from None


def _unzip(source: Path, target: Path) -> int:
    root = target.resolve()
    with zipfile.ZipFile(source) as archive:
        members = archive.infolist()
        for member in members:
            name = member.filename.replace("\\", "/")
            if name.startswith("/") or ".." in PurePosixPath(name).parts or not (root / name).resolve().is_relative_to(root):
                raise UnpackError(f"refused to unpack the zip archive: {member.filename!r} would land outside the directory")
        for member in members:
            written = Path(archive.extract(member, root))
            mode = (member.external_attr >> 16) & 0o777
            if mode and not member.is_dir():
                os.chmod(written, (mode | stat.S_IRUSR | stat.S_IWUSR) & 0o777)
        return len(members)
