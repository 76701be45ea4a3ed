"""The index: tasks found by name, one entry per namespace path.

An :class:`IndexedTask` is the record kept at one full path such as
``project.app.latest``. Its rule is Taskcluster's rank rule: an insert
replaces the entry when its rank is at least the current one (on a tie the
newer insert wins); a lower rank leaves the entry as it is, and the caller is
told what stays indexed. An entry past its ``expires`` counts as absent, so
anything may replace it; the reaper records its expiry later.

A completed task is indexed under each of its ``index.<namespace>`` routes,
with the rank, expiry and data of its ``extra.index`` (rank 0, the task's own
expiry and ``{}`` by default). Those inserts are issued by the task indexer
following the log; each one names the log position of the completion it
comes from, so an insert replayed after a crash is recognised and ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.errors import InvalidInput
from cairn.domain.timestamps import iso, parse_time

NAMESPACE = re.compile(r"([a-zA-Z0-9_!~*'()%-]+\.)*[a-zA-Z0-9_!~*'()%-]+")
MAX_NAMESPACE_LENGTH = 255
MAX_DATA_BYTES = 32 * 1024
ROUTE_PREFIX = "index."


def index_key(namespace: str) -> str:
    return f"index/{namespace}"


def valid_namespace(namespace: str) -> bool:
    return len(namespace) <= MAX_NAMESPACE_LENGTH and NAMESPACE.fullmatch(namespace) is not None


def split_namespace(path: str) -> tuple[str, str]:
    """``a.b.c`` → (``a.b``, ``c``): the parent namespace and the last name."""
    parent, _, name = path.rpartition(".")
    return parent, name


def parent_namespaces(path: str) -> list[str]:
    """Every namespace above a path, outermost first: ``a.b.c`` → [``a``, ``a.b``]."""
    parts = path.split(".")[:-1]
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


#: Taskcluster stores a rank in a 32-bit integer column; Cairn holds the same range
#: (in a double, so that fractions still order), and its schema says so.
MIN_RANK, MAX_RANK = -(2**31), 2**31 - 1


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_rank(value: Any) -> bool:
    return is_number(value) and MIN_RANK <= value <= MAX_RANK


class IndexedTask(CairnAggregate):
    @staticmethod
    def create_id(namespace: str, **_: Any) -> str:
        return index_key(namespace)

    @event("Created")
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.entry: dict[str, Any] | None = None
        #: The log position of the last task completion indexed here.
        self.indexed_up_to = 0

    def current(self, now: datetime) -> dict[str, Any] | None:
        """The entry as findTask sees it: None when absent or expired."""
        if self.entry is None or parse_time(self.entry["expires"]) <= now:
            return None
        return self.entry

    def insert(
        self,
        task_id: str,
        rank: float,
        data: dict[str, Any],
        expires: datetime,
        now: datetime,
        source_position: int | None = None,
    ) -> bool:
        """Index ``task_id`` here unless a higher rank holds the path; True if it changed."""
        if not valid_namespace(self.namespace):
            raise InvalidInput(
                f"An index path is at most {MAX_NAMESPACE_LENGTH} characters: dot-separated names "
                "of letters, digits and _!~*'()%-"
            )
        if not is_rank(rank):
            raise InvalidInput(f"rank must be a number from {MIN_RANK} to {MAX_RANK}")
        if not isinstance(data, dict):
            raise InvalidInput("data must be a JSON object")
        if len(orjson.dumps(data)) > MAX_DATA_BYTES:
            raise InvalidInput(f"data of an index entry must be at most {MAX_DATA_BYTES} bytes")
        if source_position is not None and source_position <= self.indexed_up_to:
            return False
        current = self.current(now)
        if current is not None and rank < current["rank"]:
            return False
        entry = {"taskId": task_id, "rank": rank, "data": data, "expires": iso(expires)}
        if entry == self.entry:
            return False
        self._inserted(
            task_id=task_id, rank=rank, data=data, expires=iso(expires), source_position=source_position
        )
        return True

    @event("Inserted")
    def _inserted(
        self, task_id: str, rank: float, data: dict[str, Any], expires: str, source_position: int | None
    ) -> None:
        self.entry = {"taskId": task_id, "rank": rank, "data": dict(data), "expires": expires}
        if source_position is not None:
            self.indexed_up_to = max(self.indexed_up_to, source_position)

    def delete(self) -> bool:
        """Remove the entry (an administrator's decision); False if there is none."""
        if self.entry is None:
            return False
        self._deleted()
        return True

    @event("Deleted")
    def _deleted(self) -> None:
        self.entry = None

    def expire(self, now: datetime) -> bool:
        """Drop the entry once its expiry has passed; False if there is nothing to drop."""
        if self.entry is None or parse_time(self.entry["expires"]) > now:
            return False
        self._expired()
        return True

    @event("Expired")
    def _expired(self) -> None:
        self.entry = None


@dataclass(frozen=True)
class IndexRequest:
    """One insert that a task's completion asks for."""

    namespace: str
    rank: float
    data: dict[str, Any]
    expires: datetime


def completion_requests(definition: dict[str, Any]) -> list[IndexRequest]:
    """The inserts due when a task with ``definition`` completes.

    Routes that are not valid namespaces are passed over, and so is the whole
    task when its ``extra.index`` is malformed, as Taskcluster's index does.
    """
    namespaces = [
        route[len(ROUTE_PREFIX):]
        for route in definition.get("routes", [])
        if route.startswith(ROUTE_PREFIX) and valid_namespace(route[len(ROUTE_PREFIX):])
    ]
    if not namespaces:
        return []
    extra = definition.get("extra") or {}
    options = extra.get("index") if isinstance(extra, dict) else None
    options = options if isinstance(options, dict) else {}
    rank = options.get("rank", 0)
    data = options.get("data", {})
    try:
        expires = parse_time(options.get("expires", definition["expires"]))
    except (TypeError, ValueError, AttributeError):
        return []
    if not is_rank(rank) or not isinstance(data, dict):
        return []
    unique = dict.fromkeys(namespaces)
    return [IndexRequest(ns, rank, data, expires) for ns in unique]
