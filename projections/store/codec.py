"""How an event's state becomes bytes in the log, and back.

Event fields are JSON-native (strings, numbers, lists, objects) by convention;
the one exception is the library's own ``timestamp``, a ``datetime``. orjson
writes datetimes natively, so decoding only has to restore that one field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_UTC_Z)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        stamp = state.get("timestamp")
        if isinstance(stamp, str):
            state["timestamp"] = datetime.fromisoformat(stamp)
        return state
