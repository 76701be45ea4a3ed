"""Unpacking mounted archives: every format, and nothing ever lands outside the target."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
import zlib
from pathlib import Path

import brotli
import lz4.frame
import pytest
import zstandard

from cairn.worker.archives import ARCHIVE_FORMATS, COMPRESSION_FORMATS, UnpackError, decompress_file, unpack_archive

COMPRESS = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": lambda data: zstandard.ZstdCompressor().compress(data),
    "br": brotli.compress,
    "lz4": lz4.frame.compress,
    "zz": zlib.compress,
}


def tar_bytes(members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info in members:
            content = (data or {}).get(info.name)
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def a_file(name: str, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info


def test_the_formats_are_generic_workers_that_have_a_library():
    assert COMPRESSION_FORMATS == set(COMPRESS)
    assert ARCHIVE_FORMATS == {"tar", "zip"} | {f"tar.{c}" for c in COMPRESS}


@pytest.mark.parametrize("compression", sorted(COMPRESS))
def test_every_compression_round_trips_through_a_file_and_a_tarball(tmp_path: Path, compression: str):
    payload = b"line\n" * 20_000
    source = tmp_path / "in"
    source.write_bytes(COMPRESS[compression](payload))
    decompress_file(source, compression, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == payload

    tarball = tmp_path / "in.tar"
    tarball.write_bytes(COMPRESS[compression](tar_bytes([a_file("a/b.txt"), a_file("run.sh", 0o755)],
                                                        {"a/b.txt": payload, "run.sh": b"#!/bin/sh\n"})))
    assert unpack_archive(tarball, f"tar.{compression}", tmp_path / "unpacked") == 2
    assert (tmp_path / "unpacked/a/b.txt").read_bytes() == payload
    assert (tmp_path / "unpacked/run.sh").stat().st_mode & 0o111


def test_corrupt_and_truncated_content_is_an_unpack_error(tmp_path: Path):
    source = tmp_path / "in"
    for compression in COMPRESS:
        source.write_bytes(COMPRESS[compression](b"x" * 10_000)[:-8])
        with pytest.raises(UnpackError):
            decompress_file(source, compression, tmp_path / "out")
    source.write_bytes(b"not an archive at all")
    for fmt in ("tar.gz", "zip", "tar.zst", "tar"):
        with pytest.raises(UnpackError):
            unpack_archive(source, fmt, tmp_path / fmt)


@pytest.mark.parametrize("member", [
    a_file("../escaped.txt"),
    a_file("deep/../../escaped.txt"),
])
def test_tar_members_outside_the_target_are_refused(tmp_path: Path, member: tarfile.TarInfo):
    archive = tmp_path / "evil.tar"
    archive.write_bytes(tar_bytes([member], {member.name: b"gotcha"}))
    with pytest.raises(UnpackError, match="refused"):
        unpack_archive(archive, "tar", tmp_path / "target" / "inner")
    assert not (tmp_path / "target" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_absolute_names_land_inside_the_target(tmp_path: Path):
    archive = tmp_path / "absolute.tar"
    archive.write_bytes(tar_bytes([a_file("/abs/olute.txt")], {"/abs/olute.txt": b"inside"}))
    unpack_archive(archive, "tar", tmp_path / "target")
    assert (tmp_path / "target" / "abs" / "olute.txt").read_bytes() == b"inside"
    assert not Path("/abs/olute.txt").exists()


def test_links_out_of_the_target_and_devices_are_refused(tmp_path: Path):
    symlink = tarfile.TarInfo("etc")
    symlink.type, symlink.linkname = tarfile.SYMTYPE, "/etc"
    hardlink = tarfile.TarInfo("passwd")
    hardlink.type, hardlink.linkname = tarfile.LNKTYPE, "/etc/passwd"
    device = tarfile.TarInfo("null")
    device.type = tarfile.CHRTYPE
    for i, member in enumerate((symlink, hardlink, device)):
        archive = tmp_path / f"evil-{i}.tar"
        archive.write_bytes(tar_bytes([member]))
        with pytest.raises(UnpackError, match="refused"):
            unpack_archive(archive, "tar", tmp_path / f"target-{i}")
    inside = tarfile.TarInfo("here")
    inside.type, inside.linkname = tarfile.SYMTYPE, "a/b.txt"
    archive = tmp_path / "fine.tar"
    archive.write_bytes(tar_bytes([a_file("a/b.txt"), inside], {"a/b.txt": b"ok"}))
    unpack_archive(archive, "tar", tmp_path / "fine")
    assert (tmp_path / "fine" / "here").read_bytes() == b"ok"


@pytest.mark.parametrize("name", ["../up.txt", "/abs.txt", "a/../../up.txt", "..\\win.txt"])
def test_zip_members_outside_the_target_are_refused_before_anything_is_written(tmp_path: Path, name: str):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("first.txt", b"written first?")
        z.writestr(name, b"gotcha")
    with pytest.raises(UnpackError, match="would land outside"):
        unpack_archive(archive, "zip", tmp_path / "target")
    assert not (tmp_path / "target" / "first.txt").exists()


def test_zip_keeps_executable_bits(tmp_path: Path):
    archive = tmp_path / "tools.zip"
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("bin/tool")
        info.external_attr = 0o755 << 16
        z.writestr(info, b"#!/bin/sh\n")
        z.writestr("doc.txt", b"doc")
    assert unpack_archive(archive, "zip", tmp_path / "out") == 2
    assert (tmp_path / "out/bin/tool").stat().st_mode & 0o777 == 0o755


def test_zstd_content_of_several_frames_is_read_whole(tmp_path: Path):
    frame = zstandard.ZstdCompressor().compress(b"ab" * 50_000)
    (tmp_path / "in").write_bytes(frame + frame)
    decompress_file(tmp_path / "in", "zst", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"ab" * 100_000
