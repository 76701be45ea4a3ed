"""How Cairn's processes log: human-readable lines by default, JSON lines for machines.

Every log record — Cairn's own loggers, uvicorn's, the libraries' — goes
through one structlog formatter on stderr. With ``CAIRN_LOG_FORMAT=json``
each record is one JSON object a line, shaped after Taskcluster's
structured logs (its RFC 35): ``time``, ``level``, ``severity`` (the syslog
number), ``logger``, ``message``, ``pid``, ``hostname``, and ``fields`` with
whatever the record carries (a request's ``requestId``, ``clientId``,
``endpoint``, ``status`` and ``duration``; an ``exception``). Otherwise
structlog's console renderer writes one readable line a record, coloured on
a terminal.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

import orjson
import structlog

LOG_FORMATS = ("text", "json")
#: RFC 35's severities are syslog's.
SYSLOG_SEVERITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7, "notset": 7}
#: Keys of structlog's event dictionary that are not fields of the record.
_OWN_KEYS = frozenset({"event", "level", "logger", "timestamp", "_record", "_from_structlog"})
#: uvicorn repeats its message with terminal colours for its own formatter.
_NOISE = frozenset({"color_message"})


def rfc35_shape(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """One record as Cairn's JSON line: the fixed keys, the rest under ``fields``."""
    level = str(event_dict.get("level", method_name)).lower()
    fields = {k: v for k, v in event_dict.items() if k not in _OWN_KEYS and k not in _NOISE}
    return {
        "time": event_dict.get("timestamp"),
        "level": level,
        "severity": SYSLOG_SEVERITY.get(level, 6),
        "logger": event_dict.get("logger", ""),
        "message": str(event_dict.get("event", "")),
        "pid": os.getpid(),
        "hostname": _HOSTNAME,
        "fields": fields,
    }


def _drop_noise(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in _NOISE:
        event_dict.pop(key, None)
    return event_dict


_HOSTNAME = socket.gethostname()


def configure_logging(level: str = "info", log_format: str = "text", stream: Any = None) -> None:
    """Send every log record through structlog, as text or JSON lines, at ``level`` and above."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"CAIRN_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "json":
        rendering: list[Any] = [
            structlog.processors.format_exc_info,
            rfc35_shape,
            structlog.processors.JSONRenderer(serializer=lambda data, **_: orjson.dumps(data, default=str).decode()),
        ]
    else:
        colours = hasattr(stream, "isatty") and stream.isatty()
        rendering = [_drop_noise, structlog.dev.ConsoleRenderer(colors=colours)]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's loggers: through the root's handler, not handlers of their own.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
