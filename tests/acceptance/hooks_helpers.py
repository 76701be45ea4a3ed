"""Helpers for the hooks and secrets tests: the raw rows of the event table, and hook definitions."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from tests.acceptance.queue_helpers import TASK_QUEUE


def raw_event_rows(runtime: Any) -> list[bytes]:
    """Every stored event row of the log as bytes, as the database holds it."""
    query = f"SELECT originator_id, topic, state FROM {runtime.log.recorder.events_table_name}"
    settings = runtime.settings
    if settings.backend == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as conn:
            rows = conn.execute(query).fetchall()
    else:
        with psycopg.connect(settings.database_url) as conn:
            rows = conn.execute(query).fetchall()
    return [b"|".join(_bytes(v) for v in row) for row in rows]


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode()


def hook_definition(task: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A hook creating a worker task, with the given parts."""
    definition: dict[str, Any] = {
        "metadata": {"name": "test hook", "description": "a hook of the test suite", "owner": "tests@example.com"},
        "task": task or hook_task(),
    }
    definition.update(fields)
    return definition


def hook_task(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskQueueId": TASK_QUEUE,
        "payload": {"command": ["echo", "hello"]},
        "metadata": {
            "name": "hook task",
            "description": "made by a hook",
            "owner": "tests@example.com",
            "source": "https://example.com/cairn/tests",
        },
    }
    task.update(overrides)
    return task


def role_for_hook(server: Any, group: str, hook_id: str, scopes: list[str]) -> None:
    server.client("auth").createRole(f"hook-id:{group}/{hook_id}", {"description": "hook role", "scopes": scopes})


QUEUE_SCOPES = [f"queue:create-task:lowest:{TASK_QUEUE}", "queue:scheduler-id:-", "queue:create-task:project:none"]
