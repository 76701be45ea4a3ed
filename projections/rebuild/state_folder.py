"""Aggregates as each event of the log leaves them, folded in memory in log order.

A rebuild gives write-side views the state of the aggregate after each
save, as the recorder does; folding it through the library cost about as
much as reading and decoding the event. The fold here applies an event
as the library's ``mutate`` does — the same method called with the same
arguments, the same version and ``modified_on`` after it — less what a
fold in log order does not need: checking that the event belongs to the
aggregate and follows its version (``fold`` has checked both before),
and working out again, for every event, which of its attributes the
method takes. That is worked out once per event class. An event whose
class applies itself in any other way goes through its own ``mutate``.
What it needs of the library's insides it gets from
``projections/store/eventsourcing_adapter.py``.
"""

from __future__ import annotations

import inspect
import operator
import types
from collections.abc import Callable
from typing import Any

from eventsourcing.utils import resolve_topic

from cairn.projections.store.eventsourcing_adapter import creates_plainly, creation_parameters, event_method

#: apply(event, aggregate before it or None) → the aggregate after it.
Applier = Callable[[Any, Any], Any]


class StateFolder:
    """The aggregates folded most recently, each as the latest event left it.

    They are kept in two generations: an aggregate folded goes into the
    newer; once that holds ``capacity // 2``, it becomes the older and the
    older is let go; an aggregate folded from the older moves to the newer.
    Every aggregate folded since the last ``capacity // 2`` others is kept,
    and at most ``capacity`` are — as a least-recently-used cache would,
    less moving each aggregate to its end whenever it is folded.
    """

    def __init__(self, event_log: Any, capacity: int = 200_000):
        self.log = event_log
        self.capacity = capacity
        self._newer: dict[str, Any] = {}
        self._older: dict[str, Any] = {}
        self._appliers: dict[type, Applier] = {}

    def fold(self, event: Any) -> Any:
        key = event.originator_id
        newer = self._newer
        aggregate = newer.get(key)
        if aggregate is None:
            aggregate = self._older.pop(key, None)
        if aggregate is None or aggregate.version != event.originator_version - 1:
            aggregate = None
            if event.originator_version > 1:
                aggregate = self.log.repository.get(key, version=event.originator_version - 1)
        apply = self._appliers.get(type(event))
        if apply is None:
            apply = self._appliers[type(event)] = applier(type(event))
        aggregate = newer[key] = apply(event, aggregate)
        if len(newer) > self.capacity // 2:
            self._older, self._newer = newer, {}
        return aggregate


def applier(event_class: type) -> Applier:
    """How to apply events of ``event_class``: as their ``mutate`` would, its per-event work done once."""
    if creates_plainly(event_class):
        return _creation()
    method = event_method(event_class)
    if method is not None:
        return _change(method)
    return _own_mutate


def _own_mutate(event: Any, aggregate: Any) -> Any:
    return event.mutate(aggregate)


def _parameters(method: Any) -> tuple[str, ...]:
    """The names the library picks out of an event's attributes for ``method``."""
    return tuple(inspect.signature(method).parameters)


def _change(method: types.FunctionType) -> Applier:
    """An event of an ``@event`` method: the method called with the attributes it names.

    When the method takes them all plainly, and the event has them all, they
    are passed by position, in the method's order; an event recorded before
    the method took one more (which then has a default) passes what it has
    by name, as the library does.
    """
    names = _parameters(method)
    taken = list(inspect.signature(method).parameters.values())[1:]  # after the aggregate's own
    in_order = _values_in_order([p.name for p in taken])
    if not all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in taken):

        def apply(event: Any, aggregate: Any) -> Any:
            state = event.__dict__
            method(aggregate, **{name: state[name] for name in names if name in state})
            aggregate.version = event.originator_version
            aggregate.modified_on = event.timestamp
            return aggregate

        return apply

    def apply_in_order(event: Any, aggregate: Any) -> Any:
        state = event.__dict__
        try:
            args = in_order(state)
        except KeyError:  # recorded before the method took one more
            method(aggregate, **{name: state[name] for name in names if name in state})
        else:
            method(aggregate, *args)
        aggregate.version = event.originator_version
        aggregate.modified_on = event.timestamp
        return aggregate

    return apply_in_order


def _values_in_order(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """What takes the values of ``names`` from a dict, as a tuple (KeyError if one is missing)."""
    if len(names) == 1:
        only = names[0]
        return lambda state: (state[only],)
    if not names:
        return lambda state: ()
    return operator.itemgetter(*names)  # type: ignore[return-value]


def _creation() -> Applier:
    """An aggregate's first event: a new aggregate of its topic's class, initialised from it."""
    made: dict[str, tuple[type, Callable[..., None], tuple[str, ...], tuple[str, ...], bool]] = {}

    def apply(event: Any, aggregate: Any) -> Any:
        state = event.__dict__
        topic = state["originator_topic"]
        found = made.get(topic)
        if found is None:
            cls = resolve_topic(topic)
            found = made[topic] = (cls, *creation_parameters(cls))
        cls, base_init, base_names, init_names, mentions_id = found
        new = cls.__new__(cls)
        base_init(new, **{name: state[name] for name in base_names if name in state})
        init_kwargs = {name: state[name] for name in init_names if name in state}
        if mentions_id:
            init_kwargs["id"] = state["originator_id"]
        new.__init__(**init_kwargs)
        return new

    return apply
