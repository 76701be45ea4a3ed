"""How much of a request an error body gives back: a few hundred bytes at most.

Taskcluster's error body repeats the request's route arguments and body in
``requestInfo``, and a validation message quotes the value that failed.
Echoed whole, a hostile request costs the server its own size again to
encode and send back (a 100,000-item list came back as 1.2 MB). These
functions cut each echo to a bound, saying how much was left out.
"""

from __future__ import annotations

from typing import Any

import orjson

#: The most bytes of a request body that ``requestInfo.payload`` repeats.
MAX_PAYLOAD_ECHO = 512
#: The most characters of any one value (a route argument, a quoted instance) repeated.
MAX_VALUE_ECHO = 256
#: The most characters of an error message, which may quote several values.
MAX_MESSAGE = 4096


def shortened(text: str, limit: int = MAX_VALUE_ECHO) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def echoed_payload(payload: Any) -> Any:
    """``payload`` if its JSON is short; else a note of its size, with its start."""
    if payload is None or isinstance(payload, (bool, int, float)):
        return payload if payload is not None else {}
    if isinstance(payload, str) and len(payload) <= MAX_PAYLOAD_ECHO // 4:
        return payload
    if isinstance(payload, (dict, list)) and _small(payload):
        return payload
    try:
        encoded = orjson.dumps(payload).decode()
    except (TypeError, orjson.JSONEncodeError):
        return {}
    if len(encoded) <= MAX_PAYLOAD_ECHO:
        return payload
    return {"omitted": f"a body of {len(encoded)} characters", "start": encoded[:MAX_PAYLOAD_ECHO // 2]}


def _small(value: Any) -> bool:
    """Whether ``value`` surely encodes to at most ``MAX_PAYLOAD_ECHO`` bytes, judged without encoding it."""
    budget = MAX_PAYLOAD_ECHO
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, (dict, list)):
            budget -= 2 + 2 * len(item)
            if budget >= 0:
                pending.extend(item.items() if isinstance(item, dict) else item)
        elif isinstance(item, tuple):
            pending.extend(item)
        elif isinstance(item, str):
            budget -= 2 + 6 * len(item)  # the longest escape of a character
        else:
            budget -= 24
        if budget < 0:
            return False
    return True


def echoed_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: shortened(v) if isinstance(v, str) else v for k, v in params.items()}
