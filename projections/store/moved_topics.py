"""Where Cairn's event classes lived before, so that a log written then still reads.

A stored event names its class by topic, ``module:Class.Event``. When a module
moves, events already in the log keep the old module in their topic: each old
module is registered as an alias of the new one (so old topics resolve), and
every reader that selects events by topic asks for the old topics too.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from eventsourcing.utils import get_topic, register_topic

#: old module → the module its event classes live in now.
MOVED_MODULES = {
    "cairn.domain.task_model": "cairn.domain.queue.task",
    "cairn.domain.task_group_model": "cairn.domain.queue.task_group",
    "cairn.domain.worker_model": "cairn.domain.queue.worker",
    "cairn.domain.auth_model": "cairn.domain.auth.model",
    "cairn.domain.index_model": "cairn.domain.index.model",
    "cairn.domain.object_model": "cairn.domain.objects.model",
}


def register_moved_modules() -> None:
    for old, new in MOVED_MODULES.items():
        register_topic(old, importlib.import_module(new))


def topics_of(classes: Iterable[type]) -> tuple[str, ...]:
    """Every topic under which events of ``classes`` may be stored, old ones included."""
    found: set[str] = set()
    for cls in classes:
        topic = get_topic(cls)
        found.add(topic)
        module, _, name = topic.partition(":")
        found.update(f"{old}:{name}" for old, new in MOVED_MODULES.items() if new == module)
    return tuple(sorted(found))
