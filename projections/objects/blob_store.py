"""Where object data lives: a small key → bytes store behind one interface.

The log records what an upload was (its hashes, size and the key of its
data), never the bytes. The bytes go to a :class:`BlobStore`; the embedded
default keeps them in files under ``settings.object_dir``, and an
S3-compatible store can take its place behind the same methods.

A blob is written whole or not at all: the file store writes a temporary
file, syncs it and renames it into place, so a reader sees either the old
blob or the new one, never half of one.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from typing import Protocol

CHUNK = 64 * 1024
_KEY = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*/[A-Za-z0-9_-]{3,128}")


class BlobMissing(Exception):
    """No blob is stored under this key."""


class BlobWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...
    def commit(self) -> None: ...
    def discard(self) -> None: ...


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def writer(self, key: str) -> BlobWriter: ...
    def get(self, key: str) -> bytes: ...
    def chunks(self, key: str, size: int = CHUNK) -> Iterator[bytes]: ...
    def size(self, key: str) -> int: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


class _FileWriter:
    def __init__(self, final: str, temporary: str):
        self.final = final
        self.temporary = temporary
        self.file = open(temporary, "wb")

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.makedirs(os.path.dirname(self.final), exist_ok=True)
        os.replace(self.temporary, self.final)

    def discard(self) -> None:
        self.file.close()
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass


class FileBlobStore:
    """Blobs as files: ``<root>/<prefix>/<first two characters>/<rest of the key>``."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.scratch = os.path.join(self.root, ".incoming")
        os.makedirs(self.scratch, exist_ok=True)

    def path(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a blob key: {key!r}")
        prefix, name = key.split("/", 1)
        return os.path.join(self.root, prefix, name[:2], name)

    def writer(self, key: str) -> _FileWriter:
        final = self.path(key)
        return _FileWriter(final, os.path.join(self.scratch, uuid.uuid4().hex))

    def put(self, key: str, data: bytes) -> None:
        writer = self.writer(key)
        try:
            writer.write(data)
            writer.commit()
        except BaseException:
            writer.discard()
            raise

    def get(self, key: str) -> bytes:
        return b"".join(self.chunks(key))

    def chunks(self, key: str, size: int = CHUNK) -> Iterator[bytes]:
        try:
            f = open(self.path(key), "rb")
        except FileNotFoundError:
            raise BlobMissing(key) from None

        def read() -> Iterator[bytes]:
            with f:
                while chunk := f.read(size):
                    yield chunk

        return read()

    def size(self, key: str) -> int:
        try:
            return os.path.getsize(self.path(key))
        except FileNotFoundError:
            raise BlobMissing(key) from None

    def exists(self, key: str) -> bool:
        return os.path.exists(self.path(key))

    def delete(self, key: str) -> None:
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            pass


def new_blob_key(prefix: str) -> str:
    """A fresh key that no other blob has."""
    return f"{prefix}/{uuid.uuid4().hex}"
