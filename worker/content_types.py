"""The content type of an artifact uploaded from a file, when the payload names none.

As generic-worker: a few extensions of its own first (``.log`` is
``text/plain``), then the platform's table by the last extension, then
``application/octet-stream``. An extension that ``mimetypes`` reads as an
encoding (``.gz``, ``.bz2``, ``.xz``) names the compressed file's own type,
since the data is stored and served as it is, not decoded.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: Extensions the platform's table does not know, or takes for an encoding.
CONTENT_TYPES = {
    ".log": "text/plain",
    ".jsonl": "application/jsonl",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",
    ".br": "application/x-brotli",
}


def content_type_for(filename: str) -> str:
    """An artifact's content type from its file name, by its last extension."""
    extension = Path(filename).suffix.lower()
    if extension in CONTENT_TYPES:
        return CONTENT_TYPES[extension]
    guessed, encoding = mimetypes.guess_type("artifact" + extension, strict=False)
    return (guessed if encoding is None else None) or DEFAULT_CONTENT_TYPE
