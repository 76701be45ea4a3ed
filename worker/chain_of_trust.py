"""Chain of trust: a signed statement of what a run was and what it produced.

A task with ``features.chainOfTrust`` ends, after its declared artifacts are
uploaded, with three more artifacts, as generic-worker's chain of trust:

- ``public/logs/certified.log``: the log as it is at that moment;
- ``public/chain-of-trust.json``: the task definition, ``taskId``,
  ``runId``, ``workerGroup``, ``workerId``, ``environment`` and, under
  ``artifacts``, the ``sha256`` of every artifact the run uploaded (the
  certified log included), with ``chainOfTrustVersion`` 1 — and beneath
  them whatever the task wrote to ``chain-of-trust-additional-data.json``
  in its working directory, as generic-worker merges it;
- ``public/chain-of-trust.json.sig``: the detached ed25519 signature of the
  exact bytes of ``chain-of-trust.json``, made with the worker's key.

Each listed hash is the one the object service recorded when the data was
uploaded (the upload declares it, and the service refuses to finish an
upload whose data does not match), so a reader can check an artifact three
ways: against the signed document, against the object service's record,
and against the bytes received.

The key file is generic-worker's format: the base64 of the 32-byte ed25519
seed, nothing else (a trailing newline is accepted). The public key is
shown as the base64 of its 32 raw bytes, and read back in that form (or as
a PEM public key).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cairn.worker.task_artifacts import LOG_CONTENT_TYPE, UPLOAD_ERRORS

DOCUMENT = "public/chain-of-trust.json"
SIGNATURE = "public/chain-of-trust.json.sig"
CERTIFIED_LOG = "public/logs/certified.log"
#: Artifact names the feature publishes itself; a payload may not declare them.
RESERVED = (DOCUMENT, SIGNATURE, CERTIFIED_LOG)
FEATURE_NAME = "Chain of Trust"
#: A file the task may write in its working directory: JSON merged into the document.
ADDITIONAL_DATA = "chain-of-trust-additional-data.json"
VERSION = 1


class KeyProblem(ValueError):
    """A signing or public key that cannot be read."""


def generate_key(path: str | os.PathLike[str]) -> str:
    """Write a new signing key to ``path`` (readable by its owner only); returns its public key."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(seed).decode())
    return public_key_text(key.public_key())


def load_signing_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The signing key in ``path`` (generic-worker's format: base64 of the 32-byte seed)."""
    try:
        text = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise KeyProblem(f"Missing ED25519 Private Key: cannot read {path}: {e}") from None
    try:
        seed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem(f"Missing ED25519 Private Key: {path} is not base64") from None
    if len(seed) != 32:
        raise KeyProblem(f"Missing ED25519 Private Key: {path} holds {len(seed)} bytes, not a 32-byte ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """A public key from a file: base64 of its 32 bytes, a PEM public key, or a signing key file."""
    try:
        data = Path(path).read_bytes().strip()
    except OSError as e:
        raise KeyProblem(f"cannot read the public key {path}: {e}") from None
    if data.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as e:
            raise KeyProblem(f"{path} is not a PEM public key: {e}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyProblem(f"{path} is not an ed25519 public key")
        return key
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem(f"{path} is neither base64 nor PEM") from None
    if len(raw) != 32:
        raise KeyProblem(f"{path} holds {len(raw)} bytes, not a 32-byte ed25519 key")
    # The same format holds a public key and a signing key's seed: which one is
    # meant cannot be told from the bytes, so the caller says (--public-key is public).
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_of_signing_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    return load_signing_key(path).public_key()


def document(task: dict[str, Any], task_id: str, run_id: int, worker_group: str, worker_id: str,
             environment: dict[str, Any], hashes: dict[str, str], additional: dict[str, Any] | None = None) -> bytes:
    """The bytes of ``chain-of-trust.json``, which are what is signed.

    ``additional`` is what the task asked to add (:data:`ADDITIONAL_DATA`), merged in
    underneath: where both have a value, the worker's wins.
    """
    data = {
        "chainOfTrustVersion": VERSION,
        "artifacts": {name: {"sha256": sha256} for name, sha256 in sorted(hashes.items())},
        "task": task,
        "taskId": task_id,
        "runId": run_id,
        "workerGroup": worker_group,
        "workerId": worker_id,
        "environment": environment,
    }
    return json.dumps(_merged(additional or {}, data), indent=2, ensure_ascii=False).encode()


def _merged(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def additional_data(workdir: Path) -> dict[str, Any] | None:
    """The task's own additions to its chain of trust, if it wrote any (ValueError if they are not an object)."""
    path = workdir / ADDITIONAL_DATA
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ValueError(f"{ADDITIONAL_DATA} cannot be read as JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{ADDITIONAL_DATA} must hold a JSON object")
    return data


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def signature_valid(key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def environment() -> dict[str, Any]:
    """What the worker knows of the machine it runs on, in generic-worker's field names.

    A worker outside a cloud has no instance id, type or region: those are empty,
    as generic-worker leaves them.
    """
    return {"privateIpAddress": _private_ip(), "instanceId": "", "instanceType": "", "region": ""}


def _private_ip() -> str:
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            # No packet is sent: connecting a UDP socket only picks the outgoing address.
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


# the worker's side


def requested(payload: dict[str, Any]) -> bool:
    return bool(payload.get("features", {}).get("chainOfTrust"))


def payload_problems(payload: dict[str, Any], key: Ed25519PrivateKey | None) -> list[str]:
    """Why a valid payload cannot have its chain of trust here (malformed-payload); empty when it can."""
    if not requested(payload):
        return []
    if key is None:
        return [
            f"this task is attempting to use feature {FEATURE_NAME!r}, but it's not enabled on this worker: "
            "it was started without --ed25519-signing-key. If you do not require this feature, remove "
            "features.chainOfTrust from the task definition; if you do, use workers that sign."
        ]
    declared = {a["name"] for a in payload.get("artifacts", [])}
    return [
        f"Feature {FEATURE_NAME!r} wishes to publish artifact {name} but the payload declares an artifact "
        "of that name"
        for name in RESERVED
        if name in declared
    ]


async def publish(run: Any, log_path: Path, say: Callable[[str], None]) -> bool:
    """Upload the certified log, the chain-of-trust document and its signature; False if any upload failed.

    ``run`` is the :class:`~cairn.worker.task_run.TaskRun`, whose declared
    artifacts are uploaded already.
    """
    worker = run.worker
    directory: Path = run.directory
    try:
        certified = directory / "certified.log"
        shutil.copyfile(log_path, certified)
        await run.artifacts.upload_file(CERTIFIED_LOG, certified, LOG_CONTENT_TYPE)
        listed = len(run.artifacts.uploaded)
        data = document(run.task, run.task_id, run.run_id, worker.worker_group, worker.worker_id,
                        environment(), run.artifacts.uploaded, additional_data(run.workdir))
        (directory / "chain-of-trust.json").write_bytes(data)
        await run.artifacts.upload_file(DOCUMENT, directory / "chain-of-trust.json", "application/json")
        (directory / "chain-of-trust.json.sig").write_bytes(sign(worker.signing_key, data))
        await run.artifacts.upload_file(SIGNATURE, directory / "chain-of-trust.json.sig", "application/octet-stream")
    except UPLOAD_ERRORS as e:
        say(f"Chain of trust: upload failed: {e}")
        return False
    except ValueError as e:
        say(f"Chain of trust: {e}")
        return False
    say(f"Chain of trust: {DOCUMENT} lists {listed} artifacts, signed in {SIGNATURE}")
    return True
