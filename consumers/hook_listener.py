"""Hook bindings on Cairn's own exchanges: matched straight from the log.

A follower of the whole log, at least once: it derives each event's Pulse
messages (the same pure function the publisher uses) and fires every hook
with a binding whose exchange is the message's and whose routing-key
pattern matches its routing key or one of its CCs. Its position is
tracked, so nothing is missed across restarts; a redelivered message fires
a hook once (the hook remembers the messages it fired for, and the task id
is fixed by the message). A hook fires only for messages recorded since its
bindings were defined.
"""

from __future__ import annotations

import logging
from typing import Any

from cairn.consumers.event_stream import derive
from cairn.consumers.log_follower import AggregateFolder, Guarantee, LoggedEvent
from cairn.domain.aggregate import acting_as
from cairn.domain.hooks.firing import HookFiring
from cairn.domain.hooks.model import hook_key
from cairn.domain.pulse_messages import PulseMessage
from cairn.domain.pulse_routing import RoutingKeyPattern
from cairn.domain.timestamps import iso, utcnow

log = logging.getLogger("cairn.hooks.listener")

NAME = "hook-listener"
ACTOR = "cairn/hooks"


def binding_matches(binding: dict[str, str], message: PulseMessage) -> bool:
    if binding["exchange"] != message.exchange:
        return False
    pattern = RoutingKeyPattern(binding["routingKeyPattern"])
    return any(pattern.match(key) for key in (message.routing_key, *message.cc))


class HookListener:
    name = NAME
    guarantee: Guarantee = "at-least-once"
    topics: tuple[str, ...] = ()

    def __init__(self, event_log: Any, reads: Any, firing: HookFiring):
        self.log = event_log
        self.reads = reads
        self.firing = firing
        self.folder = AggregateFolder(event_log)

    def handle(self, session: Any, batch: list[LoggedEvent]) -> None:
        bound = self.reads.with_bindings()
        if not bound:
            return
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

    def _fire(self, group: str, hook_id: str, message: PulseMessage, when: Any) -> None:
        try:
            hook = self.log.get(hook_key(group, hook_id))
            if hook is None or hook.removed:
                return
            with acting_as(ACTOR):
                self.firing.fire_for_message(hook, message, when, utcnow())
        except Exception:
            log.exception("hook %s/%s did not fire for message %s", group, hook_id, message.message_id)
