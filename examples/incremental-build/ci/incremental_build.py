#!/usr/bin/env python3
"""An incremental build on a Taskcluster-compatible deployment (Cairn or Taskcluster).

1. Restore: fetch the workspace the previous build uploaded, found by name in
   the index (``index.findArtifactFromTask``: ``GET <root URL>/api/index/v1/
   task/<index path>/artifacts/<name>``, which redirects to the artifact).
   Nothing there yet (404), or an unreadable archive, means a fresh build.
2. Build: "compile" every ``*.txt`` under the source's ``src/`` into the
   workspace, redoing only the files whose content changed since the restored
   workspace was made (a manifest of sha256 digests says which).
3. Save: pack the workspace into ``<artifacts>/workspace.tar.gz`` for the next
   build to restore, and write ``<artifacts>/report.txt``.

Standard library only, so any worker with Python 3.9+ runs it. In a task
with ``features: {taskclusterProxy: true}`` the index is called through the
proxy, with the task's scopes (``index:find-task:<path>``,
``queue:get-artifact:<name>``), so it works on a private deployment too; the
index redirects to a signed (or public) artifact URL that needs no credentials.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ARTIFACT = "public/incremental-build/workspace.tar.gz"
MANIFEST = "manifest.json"


def say(message: str) -> None:
    print(f"incremental-build: {message}", flush=True)


def index_url(root_url: str, index_path: str, name: str | None = None) -> str:
    url = f"{root_url.rstrip('/')}/api/index/v1/task/{urllib.parse.quote(index_path)}"
    return url if name is None else f"{url}/artifacts/{urllib.parse.quote(name)}"


def fetch_previous(root_url: str, index_path: str, name: str) -> tuple[bytes, str] | None:
    """The previous build's archive and the task that made it; None when there is none to use."""
    try:
        # index.findTask names the task; index.findArtifactFromTask redirects to its artifact.
        with urllib.request.urlopen(index_url(root_url, index_path), timeout=60) as response:
            task_id = json.load(response)["taskId"]
        with urllib.request.urlopen(index_url(root_url, index_path, name), timeout=300) as response:
            return response.read(), task_id
    except urllib.error.HTTPError as e:
        if e.code == 404:
            say(f"no previous workspace at {index_path} ({name}): fresh build")
        else:
            say(f"could not fetch the previous workspace ({e.code} {e.reason}): fresh build")
    except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
        say(f"could not fetch the previous workspace ({e}): fresh build")
    return None


def restore(archive: bytes, workspace: Path) -> bool:
    """Unpack ``archive`` into ``workspace``; False (and an empty workspace) when it cannot be read."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar.getmembers():
                target = (workspace / member.name).resolve()
                if not (member.isfile() or member.isdir()) or workspace.resolve() not in (target, *target.parents):
                    raise tarfile.TarError(f"unexpected entry {member.name!r}")
            tar.extractall(workspace)  # noqa: S202 - every entry checked above
        return True
    except (tarfile.TarError, OSError, EOFError) as e:
        say(f"the previous workspace cannot be read ({e}): fresh build")
        shutil.rmtree(workspace, ignore_errors=True)
        workspace.mkdir(parents=True)
        return False


def compile_source(text: str) -> str:
    """The "expensive" step: a summary of one source file."""
    words = text.split()
    distinct = sorted({w.strip(".,;:!?").lower() for w in words} - {""})
    return f"lines={len(text.splitlines())} words={len(words)}\n{' '.join(distinct)}\n"


def build(source: Path, workspace: Path) -> dict[str, int]:
    manifest_path = workspace / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    outputs = workspace / "out"
    outputs.mkdir(parents=True, exist_ok=True)
    counts = {"built": 0, "reused": 0, "removed": 0}
    current = {}
    for path in sorted((source / "src").rglob("*.txt")):
        name = path.relative_to(source / "src").as_posix()
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        output = outputs / f"{name}.out"
        if manifest.get(name) == digest and output.exists():
            counts["reused"] += 1
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(compile_source(text), encoding="utf-8")
            counts["built"] += 1
            say(f"built {name}")
        current[name] = digest
    for name in set(manifest) - set(current):
        (outputs / f"{name}.out").unlink(missing_ok=True)
        counts["removed"] += 1
        say(f"removed {name}")
    manifest_path.write_text(json.dumps(current, indent=2, sort_keys=True))
    return counts


def save(workspace: Path, artifacts: Path, counts: dict[str, int], restored_from: str) -> None:
    artifacts.mkdir(parents=True, exist_ok=True)
    with tarfile.open(artifacts / "workspace.tar.gz", "w:gz") as tar:
        for path in sorted(workspace.rglob("*")):
            tar.add(path, arcname=path.relative_to(workspace).as_posix(), recursive=False)
    lines = [f"restored-from={restored_from or 'nothing'}"]
    lines += [f"{key}={value}" for key, value in sorted(counts.items())]
    for output in sorted((workspace / "out").rglob("*.out")):
        lines.append(f"== {output.relative_to(workspace / 'out').as_posix()}")
        lines.append(output.read_text(encoding="utf-8").rstrip("\n"))
    (artifacts / "report.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="the checked-out repository")
    parser.add_argument("--index", required=True, help="the index path of the previous build to restore")
    parser.add_argument("--artifact", default=ARTIFACT, help="the workspace artifact's name")
    parser.add_argument("--workspace", type=Path, default=Path("workspace"))
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--root-url", help="where to call the index (default: the task's taskclusterProxy, "
                        "signing with the task's scopes, else TASKCLUSTER_ROOT_URL, anonymously)",
                        default=os.environ.get("TASKCLUSTER_PROXY_URL") or os.environ.get("TASKCLUSTER_ROOT_URL", ""))
    args = parser.parse_args(argv)
    if not args.root_url:
        parser.error("--root-url, TASKCLUSTER_PROXY_URL or TASKCLUSTER_ROOT_URL is needed")

    shutil.rmtree(args.workspace, ignore_errors=True)
    args.workspace.mkdir(parents=True)
    restored_from = ""
    previous = fetch_previous(args.root_url, args.index, args.artifact)
    if previous is not None and restore(previous[0], args.workspace):
        restored_from = previous[1]
        say(f"restored the workspace of task {restored_from} from {args.index}")
    counts = build(args.source, args.workspace)
    say(", ".join(f"{key} {value}" for key, value in counts.items()))
    save(args.workspace, args.artifacts, counts, restored_from)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
