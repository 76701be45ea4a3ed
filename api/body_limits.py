"""What Cairn refuses in a request body although JSON allows it.

- Nesting deeper than ``MAX_DEPTH``: orjson reads JSON 1,024 levels deep
  but writes at most 255, and what Cairn stores or answers wraps a body a
  few levels deeper still, so such a body would fail on its way out.
- A list (or object) of more than ``MAX_ITEMS`` items, at any depth: no request of
  Taskcluster's needs one (its longest lists, a task's dependencies, stop
  at 10,000), and checking a million items against a schema costs the
  server a fraction of a second before it even knows who is asking.
- The NUL character (``\\u0000``), in a value or a key: PostgreSQL stores it
  neither in ``text`` nor in ``jsonb``, and both back ends must take the same
  bodies.

Each check first asks the raw bytes, at C speed, whether the body could
possibly be refused, and walks the parsed body only if it could.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 100
MAX_ITEMS = 100_000


def nested_deeper_than(raw: bytes, body: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``body``, parsed from ``raw``, nests arrays and objects more than ``limit`` deep."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    containers = [body] if isinstance(body, (dict, list)) else []
    for _ in range(limit):
        containers = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, (dict, list))
        ]
        if not containers:
            return False
    return True


def list_longer_than(raw: bytes, body: Any, limit: int = MAX_ITEMS) -> bool:
    """Whether a list or object in ``body``, parsed from ``raw``, holds more than ``limit`` items.

    Items and members are separated by commas, so a body with fewer commas holds no such list.
    """
    if raw.count(b",") < limit:
        return False
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            if len(value) > limit:
                return True
            pending.extend(v for v in value if isinstance(v, (dict, list)))
        elif isinstance(value, dict):
            if len(value) > limit:
                return True
            pending.extend(v for v in value.values() if isinstance(v, (dict, list)))
    return False


def holds_nul(raw: bytes, body: Any) -> bool:
    """Whether a string in ``body``, parsed from ``raw``, holds a NUL character.

    JSON can only spell NUL as the escape ``\\u0000``, so a body without
    those six bytes holds none.
    """
    if b"\\u0000" not in raw:
        return False
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False
