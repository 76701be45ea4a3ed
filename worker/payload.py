"""What a valid payload may still ask that this worker cannot give: each refusal is ``malformed-payload``.

The schema (``schemas/worker/v1/payload.yml``) is generic-worker's, so a task
written for generic-worker passes it. Some of what it allows needs more than
this worker has, and generic-worker itself refuses those tasks as
``malformed-payload`` before running anything, with the reason in the log:

- ``osGroups``: the insecure engine cannot add its user to groups; a group
  the worker's user is already in is accepted, any other refused — and each
  needs ``generic-worker:os-group:<taskQueueId>/<group>``;
- a writable cache needs ``generic-worker:cache:<cacheName>``;
- a mount of another task's artifact needs that task in ``dependencies``;
- ``loopbackVideo``/``loopbackAudio`` devices and the ``docker-bridge``
  proxy interface do not exist here;
- archive and compression formats without a library here.

Scopes are checked against the task's ``scopes``; when they do not satisfy
a requirement as written and some are ``assume:`` scopes, they are expanded
by the auth service first, as generic-worker does.
"""

from __future__ import annotations

import asyncio
import getpass
import grp
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import taskcluster.aio
from taskcluster.exceptions import TaskclusterFailure

from cairn.domain.auth.scopes import satisfies
from cairn.worker.archives import ARCHIVE_FORMATS, COMPRESSION_FORMATS

log = logging.getLogger("cairn.worker")

#: Expands a list of scopes through the auth service (``auth.expandScopes``).
Expander = Callable[[list[str]], Awaitable[list[str]]]


def mount_content(mount: dict[str, Any]) -> dict[str, Any] | None:
    return mount.get("content")


def auth_expander(options: dict[str, Any]) -> Expander:
    """Expands scopes with the auth service, on the worker's own credentials (``auth:expand-scopes``)."""

    async def expand(scopes: list[str]) -> list[str]:
        auth = taskcluster.aio.Auth(dict(options, maxRetries=2))
        try:
            return (await auth.expandScopes({"scopes": scopes}))["scopes"]
        except (TaskclusterFailure, aiohttp.ClientError, asyncio.TimeoutError) as e:
            log.warning("cannot expand the task's scopes with the auth service: %s", e)
            return scopes

    return expand


def required_scopes(payload: dict[str, Any], task_queue_id: str) -> list[str]:
    """The scopes the payload needs in the task's ``scopes``."""
    needed = [f"generic-worker:os-group:{task_queue_id}/{group}" for group in payload.get("osGroups", [])]
    needed += [f"generic-worker:cache:{m['cacheName']}" for m in payload.get("mounts", []) if "cacheName" in m]
    return needed


async def missing_scopes(needed: list[str], given: list[str], expand: Expander | None) -> list[str]:
    """The scopes of ``needed`` that ``given`` (expanded if it must be) does not satisfy."""
    missing = [scope for scope in needed if not satisfies(given, scope)]
    if missing and expand is not None and any(scope.startswith("assume:") for scope in given):
        expanded = await expand(given)
        missing = [scope for scope in missing if not satisfies(expanded, scope)]
    return missing


def worker_user_groups() -> set[str]:
    """Names of the groups this process's user is in (its own eponymous group aside, as generic-worker does)."""
    user = getpass.getuser()
    names = set()
    for gid in {*os.getgroups(), os.getgid()}:
        try:
            name = grp.getgrgid(gid).gr_name
        except KeyError:
            continue
        if name != user:
            names.add(name)
    return names


async def payload_refusals(task: dict[str, Any], task_queue_id: str, expand: Expander | None) -> list[str]:
    """Why this worker cannot run a payload that matches its schema; empty when it can."""
    payload = task["payload"]
    reasons: list[str] = []
    groups = payload.get("osGroups", [])
    if groups:
        available = worker_user_groups()
        unavailable = [g for g in groups if g not in available]
        if unavailable:
            reasons.append(
                f"payload.osGroups: this worker cannot add its user to groups, and it is not in {unavailable} "
                f"(groups available on this worker pool: {sorted(available)})"
            )
    features = payload.get("features", {})
    for device in ("loopbackVideo", "loopbackAudio"):
        if features.get(device):
            reasons.append(f"payload.features.{device}: this worker pool has no such device; the feature is not enabled")
    if payload.get("taskclusterProxyInterface") == "docker-bridge":
        reasons.append("payload.taskclusterProxyInterface: there is no docker bridge here; only localhost is available")
    reasons += list(_mount_refusals(payload.get("mounts", []), task.get("dependencies", [])))
    missing = await missing_scopes(required_scopes(payload, task_queue_id), task.get("scopes", []), expand)
    if missing:
        reasons.append(
            f"the task's scopes do not include {missing}, which its payload needs "
            f"(task.scopes: {task.get('scopes', [])})"
        )
    return reasons


def _mount_refusals(mounts: list[dict[str, Any]], dependencies: list[str]) -> Iterable[str]:
    for i, mount in enumerate(mounts):
        where = f"payload.mounts[{i}]"
        fmt = mount.get("format")
        if fmt is not None:
            known = COMPRESSION_FORMATS if "file" in mount else ARCHIVE_FORMATS
            if fmt not in known:
                yield f"{where}.format: {fmt} is not supported by this worker (it reads {', '.join(sorted(known))})"
        content = mount_content(mount) or {}
        if "taskId" in content and content["taskId"] not in dependencies:
            yield f"{where}: task.dependencies needs to include {content['taskId']}, since one of its artifacts is mounted"


def declared_artifacts(payload: dict[str, Any], workdir: Path, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """The payload's ``artifacts`` as the uploader takes them: each named (``path`` when it has no name),
    and the ``optional`` ones that are not there left out."""
    declared = []
    for artifact in payload.get("artifacts", []):
        artifact = {"name": artifact["path"], **artifact}
        if artifact.get("optional") and not (workdir / artifact["path"]).exists():
            say(f"Optional artifact {artifact['name']}: {artifact['path']} is not there; skipped")
            continue
        declared.append(artifact)
    return declared
