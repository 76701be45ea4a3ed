"""What Cairn refuses in a request body although JSON allows it.

- Nesting deeper than ``MAX_DEPTH``: orjson reads JSON 1,024 levels deep
  but writes at most 255, and what Cairn stores or answers wraps a body a
  few levels deeper still, so such a body would fail on its way out.
- The NUL character (``\\u0000``), in a value or a key: PostgreSQL stores it
  neither in ``text`` nor in ``jsonb``, and both back ends must take the same
  bodies.

Each check first asks the raw bytes, at C speed, whether the body could
possibly be refused, and walks the parsed body only if it could.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 100


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
