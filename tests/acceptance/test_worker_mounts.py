"""Mounts end to end: a real ``cairn worker`` puts files, archives and caches in place for its tasks.

Content comes from other tasks' artifacts (fetched with the task's own
credentials, checked against a sha256), the index, a URL served by the test,
or the payload itself; every archive format unpacks, and one that would write
outside its directory fails the run.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import http.server
import io
import lzma
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import taskcluster
import taskcluster.download
import zstandard

from tests.acceptance.test_worker import create, resolved, task_log, wait_for
from tests.acceptance.test_worker import server, start_worker  # noqa: F401 (fixtures)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Public artifacts are public through the anonymous role, as in a Taskcluster deployment.
    return {"claim_timeout": 3, "reaper_interval": 0.2, "anonymous_role": "public"}


FILES = {"top.txt": b"top of the archive\n", "deep/er/inner.txt": b"deep inside\n"}


def _tar(compress: Any = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        script = b"#!/bin/sh\necho the script ran\n"
        info = tarfile.TarInfo("bin/script.sh")
        info.size, info.mode = len(script), 0o755
        archive.addfile(info, io.BytesIO(script))
    return compress(buffer.getvalue()) if compress else buffer.getvalue()


def _zip(entries: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (entries or FILES).items():
            archive.writestr(name, data)
    return buffer.getvalue()


ARCHIVES = {
    "tar": _tar(),
    "tar.gz": _tar(gzip.compress),
    "tar.bz2": _tar(bz2.compress),
    "tar.xz": _tar(lzma.compress),
    "tar.zst": _tar(zstandard.ZstdCompressor().compress),
    "zip": _zip(),
}


def b64(data: bytes) -> dict[str, str]:
    return {"base64": base64.b64encode(data).decode()}


def done(queue: Any, task_id: str, state: str = "completed") -> str:
    status = resolved(queue, task_id)
    log = task_log(queue, task_id)
    assert status["state"] == state, log
    return log


@pytest.fixture
def web_files(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP server on loopback, serving a directory: (base URL, directory)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def test_a_file_mounted_from_another_tasks_artifact_must_match_its_sha256(server, start_worker):
    queue = server.client("queue")
    start_worker(capacity=3)
    producer = create(queue, {
        "command": "head -c 50000 /dev/urandom > data.bin && cp data.bin private.bin",
        "artifacts": [{"type": "file", "path": "data.bin", "name": "public/data.bin"},
                      {"type": "file", "path": "private.bin", "name": "private/data.bin"}],
    })
    done(queue, producer)
    data, _ = taskcluster.download.downloadArtifactToBuf(
        taskId=producer, runId=0, name="public/data.bin", queueService=queue
    )
    digest = hashlib.sha256(bytes(data)).hexdigest()
    wrong = hashlib.sha256(b"something else").hexdigest()

    def consumer(sha256: str, artifact: str = "public/data.bin", **overrides: Any) -> str:
        content = {"taskId": producer, "artifact": artifact, "sha256": sha256}
        return create(queue, {
            "command": [["sh", "-c", f"echo {digest} in/data.bin | sha256sum -c"]],
            "mounts": [{"file": "in/data.bin", "content": content}],
        }, dependencies=[producer], **overrides)

    matching = consumer(digest)
    mismatching = consumer(wrong)
    private = consumer(digest, "private/data.bin", scopes=["queue:get-artifact:private/data.bin"])
    private_refused = consumer(digest, "private/data.bin")
    undeclared = create(queue, {
        "command": "true", "mounts": [{"file": "x", "content": {"taskId": producer, "artifact": "public/data.bin"}}],
    })

    log = done(queue, matching)
    assert "in/data.bin: OK" in log
    assert f"matching the required SHA256 {digest}" in log
    log = done(queue, mismatching, "failed")
    assert f"has SHA256 {digest} but task definition explicitly requires {wrong}" in log
    assert "the task fails without running its commands" in log
    assert "sha256sum" not in log.split("the task fails without running its commands")[1]
    assert "in/data.bin: OK" in done(queue, private)
    log = done(queue, private_refused, "failed")
    assert f"cannot download task {producer} artifact private/data.bin" in log
    assert "InsufficientScopes" in log or "queue:get-artifact:private/data.bin" in log
    status = resolved(queue, undeclared)
    assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "malformed-payload")
    assert f"task.dependencies needs to include {producer}" in task_log(queue, undeclared)


def test_every_archive_format_unpacks_into_a_read_only_directory(server, start_worker):
    queue = server.client("queue")
    start_worker()
    mounts = [{"directory": f"unpacked/{fmt}", "format": fmt, "content": b64(data)} for fmt, data in ARCHIVES.items()]
    checks = " && ".join(
        f"cmp unpacked/{fmt}/top.txt top.txt && cmp unpacked/{fmt}/deep/er/inner.txt inner.txt"
        for fmt in ARCHIVES
    )
    task_id = create(queue, {
        "command": f"printf 'top of the archive\\n' > top.txt && printf 'deep inside\\n' > inner.txt && {checks}"
                   " && unpacked/tar.xz/bin/script.sh",
        "mounts": mounts,
    })
    log = done(queue, task_id)
    assert "the script ran\n" in log
    for fmt in ARCHIVES:
        assert f"({fmt}) at " in log


def test_compressed_files_urls_and_the_index_are_mount_sources(server, start_worker, web_files):
    queue = server.client("queue")
    base_url, served = web_files
    (served / "notes.txt.gz").write_bytes(gzip.compress(b"from the web\n"))
    (served / "bundle.zip").write_bytes(_zip({"a/b.txt": b"zipped over http\n"}))
    start_worker()
    indexed = create(queue, {
        "command": "echo indexed > out.txt",
        "artifacts": [{"type": "file", "path": "out.txt", "name": "public/out.txt"}],
    }, routes=["index.cairn.tests.mounts.latest"])
    done(queue, indexed)
    index = server.client("index")
    wait_for(lambda: _found(index, "cairn.tests.mounts.latest"), what="the task to be indexed")

    task_id = create(queue, {
        "command": "cat notes.txt raw.txt decoded.bin zst.txt web/a/b.txt from-index.txt",
        "mounts": [
            {"file": "notes.txt", "format": "gz", "content": {
                "url": f"{base_url}/notes.txt.gz",
                "sha256": hashlib.sha256((served / "notes.txt.gz").read_bytes()).hexdigest()}},
            {"file": "raw.txt", "content": {"raw": "raw content\n"}},
            {"file": "decoded.bin", "content": b64(b"base64 content\n")},
            {"file": "zst.txt", "format": "zst", "content": b64(zstandard.ZstdCompressor().compress(b"zstd file\n"))},
            {"directory": "web", "format": "zip", "content": {"url": f"{base_url}/bundle.zip"}},
            {"file": "from-index.txt", "content": {"namespace": "cairn.tests.mounts.latest", "artifact": "public/out.txt"}},
        ],
    })
    missing_url = create(queue, {"command": "true", "mounts": [{"file": "x", "content": {"url": f"{base_url}/nope"}}]})

    log = done(queue, task_id)
    output = "from the web\nraw content\nbase64 content\nzstd file\nzipped over http\nindexed\n"
    assert output in log
    assert f"Namespace cairn.tests.mounts.latest is task {indexed}" in log
    assert "404" in done(queue, missing_url, "failed")


def _found(index: Any, namespace: str) -> bool:
    try:
        index.findTask(namespace)
    except taskcluster.exceptions.TaskclusterRestFailure:
        return False
    return True


def test_archives_that_would_write_outside_their_directory_fail_the_run(server, start_worker, tmp_path):
    queue = server.client("queue")
    start_worker()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"out\n"))
    tar_escape = create(queue, {
        "command": "true", "mounts": [{"directory": "d", "format": "tar.gz", "content": b64(buffer.getvalue())}],
    })
    zip_escape = create(queue, {
        "command": "true", "mounts": [{"directory": "d", "format": "zip", "content": b64(_zip({"../up.txt": b"x"}))}],
    })
    link = io.BytesIO()
    with tarfile.open(fileobj=link, mode="w") as archive:
        info = tarfile.TarInfo("etc-link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc"
        archive.addfile(info)
    link_escape = create(queue, {
        "command": "true", "mounts": [{"directory": "d", "format": "tar", "content": b64(link.getvalue())}],
    })
    corrupt = create(queue, {
        "command": "true", "mounts": [{"directory": "d", "format": "tar.xz", "content": b64(b"not xz at all")}],
    })

    assert "refused to unpack the tar.gz archive" in done(queue, tar_escape, "failed")
    assert "refused to unpack the zip archive: '../up.txt' would land outside the directory" in done(
        queue, zip_escape, "failed"
    )
    assert "refused to unpack the tar archive" in done(queue, link_escape, "failed")
    assert "cannot unpack the tar.xz archive" in done(queue, corrupt, "failed")
