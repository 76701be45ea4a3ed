"""What the hooks handlers see of a running Cairn: one small, typed context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cairn.domain.hooks.firing import HookFiring
from cairn.domain.hooks.service import HooksService
from cairn.projections.hooks.views import HookReads


@dataclass(frozen=True)
class HooksContext:
    hooks: HooksService
    firing: HookFiring
    reads: HookReads
    #: task ids → the state of each task that exists.
    task_states: Callable[[list[str]], dict[str, str]]
