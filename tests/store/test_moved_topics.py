"""A log written before a module moved still reads: old topics resolve, and are selected."""

from __future__ import annotations

from eventsourcing.utils import get_topic, resolve_topic

from cairn.domain.queue.task import Task
from cairn.projections.store.event_log import SqlEventLog  # noqa: F401  (registers the moved modules)
from cairn.projections.store.moved_topics import MOVED_MODULES, topics_of


def test_an_old_topic_resolves_to_the_class_where_it_lives_now() -> None:
    assert resolve_topic("cairn.domain.task_model:Task.Defined") is Task.Defined


def test_every_moved_module_names_a_module_that_exists() -> None:
    for old, new in MOVED_MODULES.items():
        assert resolve_topic(f"{old}:") is resolve_topic(f"{new}:")


def test_topics_of_a_class_include_its_old_topic() -> None:
    assert topics_of([Task.Defined]) == (
        "cairn.domain.queue.task:Task.Defined",
        "cairn.domain.task_model:Task.Defined",
    )
    assert get_topic(Task.Defined) == "cairn.domain.queue.task:Task.Defined"
