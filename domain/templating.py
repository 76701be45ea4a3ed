"""Small helpers shared by everything that renders JSON-e into task definitions (hooks, GitHub)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import slugid


def derived_task_id(*parts: str) -> str:
    """A task id fixed by ``parts``: the same fire, repeated, names the same task."""
    digest = bytearray(hashlib.sha256("\n".join(parts).encode()).digest()[:16])
    digest[0] &= 0x7F  # a "nice" slug id, as Taskcluster makes them
    return slugid.encode(uuid.UUID(bytes=bytes(digest), version=4))


def integral_floats_as_ints(value: Any) -> Any:
    """``value`` with every float that is a whole number (``2.0``) made an int, at any depth.

    JSON-e's arithmetic gives floats where JavaScript has only numbers; a
    schema asking for an integer must accept what JavaScript would print as one.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_ints(item) for item in value]
    return value
