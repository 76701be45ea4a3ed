"""Hook bindings on Cairn's own exchanges: matched straight from the log.

A follower of the whole log, at least once: it derives each event's Pulse
messages (the same pure function the publisher uses) and fires every hook
with a binding whose exchange is the message's and whose routing-key
pattern matches its routing key or one of its CCs. Its position is
tracked, so nothing is missed across restarts; a redelivered message fires
a hook once (the hook remembers the messages it fired for, and the task id
is fixed by the message). A hook fires only for messages recorded since its
bindings were defined.

While no hook is bound, it follows hooks' definitions only: it decodes
nothing else, and its position moves in memory, written down now and then.
"""

from __future__ import annotations

import logging
from typing import Any

from cairn.consumers.event_stream import derive
from cairn.consumers.log_follower import AggregateFolder, Guarantee, LoggedEvent, Retake
from cairn.domain.aggregate import acting_as
from cairn.domain.hooks.firing import HookFiring
from cairn.domain.hooks.model import Hook, hook_key
from cairn.domain.pulse_messages import PulseMessage
from cairn.domain.pulse_routing import RoutingKeyPattern
from cairn.domain.timestamps import iso, utcnow
from cairn.projections.store.moved_topics import topics_of

log = logging.getLogger("cairn.hooks.listener")

NAME = "hook-listener"
ACTOR = "cairn/hooks"
#: The events that change which hooks are bound, and to what.
DEFINITIONS = (Hook.Created, Hook.Recreated, Hook.DefinitionChanged, Hook.Removed)
DEFINITION_TOPICS = topics_of(DEFINITIONS)


def binding_matches(binding: dict[str, str], message: PulseMessage) -> bool:
    if binding["exchange"] != message.exchange:
        return False
    pattern = RoutingKeyPattern(binding["routingKeyPattern"])
    return any(pattern.match(key) for key in (message.routing_key, *message.cc))


class HookListener:
    name = NAME
    guarantee: Guarantee = "at-least-once"

    def __init__(self, event_log: Any, reads: Any, firing: HookFiring):
        self.log = event_log
        self.reads = reads
        self.firing = firing
        self.folder = AggregateFolder(event_log)
        #: The hooks with bindings, as last read; None: to be read.
        self._bound: list[dict[str, Any]] | None = None

    def bound(self, batch: list[LoggedEvent]) -> list[dict[str, Any]]:
        """The hooks with bindings, read again only if a hook's definition changed since.

        Whatever process changed it, the change is an event in the log this
        listener follows, and the hooks view is written in that event's own
        transaction: reading the view again on seeing such an event in a
        batch, before handling the batch, finds that change and any before it.
        """
        if self._bound is None or any(isinstance(logged.event, DEFINITIONS) for logged in batch):
            self._bound = self.reads.with_bindings()
        return self._bound

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic while a hook is bound (or that is not known yet); while none is, hooks' definitions only.

        So while nothing is bound the listener's follower moves over the
        log without decoding it, and wakes on the first change to a hook.
        """
        return DEFINITION_TOPICS if self._bound == [] else ()

    def handle(self, session: Any, batch: list[LoggedEvent]) -> bool:
        definitions_only = self._bound == []
        bound = self.bound(batch)
        if not bound:
            return False  # nothing is bound, so no event here can fire a hook, now or redelivered
        if definitions_only:
            # Taken while nothing was bound, so every other event was passed
            # over; this batch bound a hook, so the events from its first
            # definition on may fire it: take them again, of every topic now.
            raise Retake(batch[0].position - 1)
        for logged in batch:
            try:
                items = derive(self.folder, [logged])
            except Exception:
                log.exception("no messages derived for the event at %s; going on", logged.position)
                continue
            when = logged.event.timestamp
            for item in items:
                for row in bound:
                    if iso(when) < row["bound_since"]:
                        continue
                    if any(binding_matches(b, item.message) for b in row["definition"]["bindings"]):
                        self._fire(row["hook_group_id"], row["hook_id"], item.message, when)
        return True

    def _fire(self, group: str, hook_id: str, message: PulseMessage, when: Any) -> None:
        try:
            hook = self.log.get(hook_key(group, hook_id))
            if hook is None or hook.removed:
                return
            with acting_as(ACTOR):
                self.firing.fire_for_message(hook, message, when, utcnow())
        except Exception:
            log.exception("hook %s/%s did not fire for message %s", group, hook_id, message.message_id)
