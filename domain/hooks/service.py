"""The hooks application service: define, change and remove hooks, and keep their trigger tokens.

A definition is stored as Taskcluster returns it, with the defaults of its
request schema filled in. createHook again with the same definition is a
success that changes nothing; with another, ``Conflict``. The trigger token
is a slug id, sealed with the deployment key in every event that holds it,
and opened only to answer getTriggerToken or to check a triggerHookWithToken.
"""

from __future__ import annotations

import copy
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

import slugid
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from cairn.domain.auth.token_cipher import TokenCipher
from cairn.domain.errors import Conflict, InvalidInput, NotFound
from cairn.domain.event_log import EventLog
from cairn.domain.hooks.model import Hook, hook_key
from cairn.domain.hooks.schedule import check_schedule, next_due
from cairn.domain.timestamps import iso

#: Without a triggerSchema a hook accepts only an empty payload (Taskcluster's default).
DEFAULT_TRIGGER_SCHEMA = {"type": "object", "additionalProperties": False}


def normalise_definition(body: dict[str, Any], bindings_before: list[Any] | None = None) -> dict[str, Any]:
    """The stored definition for a create or update request body, checked."""
    metadata = {"emailOnError": True, **copy.deepcopy(body["metadata"])}
    schedule = list(body.get("schedule") or [])
    check_schedule(schedule)
    trigger_schema = copy.deepcopy(body.get("triggerSchema", DEFAULT_TRIGGER_SCHEMA))
    try:
        Draft7Validator.check_schema(trigger_schema)
    except SchemaError as e:
        raise InvalidInput(f"triggerSchema is not a valid JSON schema: {e.message}") from None
    bindings = body.get("bindings")
    if bindings is None:
        bindings = bindings_before or []
    return {
        "metadata": metadata,
        "task": copy.deepcopy(body["task"]),
        "schedule": schedule,
        "bindings": copy.deepcopy(bindings),
        "triggerSchema": trigger_schema,
    }


def _next_date(definition: dict[str, Any], now: datetime) -> str | None:
    found = next_due(definition["schedule"], now)
    return iso(found) if found else None


class HooksService:
    def __init__(self, log: EventLog, cipher: TokenCipher, on_change: Callable[[], None] = lambda: None):
        self.log = log
        self.cipher = cipher
        self.on_change = on_change

    def create(self, hook_group_id: str, hook_id: str, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        definition = normalise_definition(body)
        sealed = self.cipher.seal(slugid.nice())
        next_date = _next_date(definition, now)

        def apply() -> dict[str, Any]:
            hook = self.log.get(hook_key(hook_group_id, hook_id))
            if hook is None:
                hook = Hook(hook_group_id=hook_group_id, hook_id=hook_id, definition=definition,
                            sealed_token=sealed, next_scheduled_date=next_date)
            elif not hook.removed:
                if hook.definition == definition:
                    return hook.definition
                raise Conflict(f"hook `{hook_group_id}/{hook_id}` already exists.")
            else:
                hook.recreate(definition, sealed, next_date)
            self.log.save(hook)
            return hook.definition

        found = self.log.command(apply)
        self.on_change()
        return found

    def update(self, hook_group_id: str, hook_id: str, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        def apply() -> dict[str, Any]:
            hook = self.live(hook_group_id, hook_id)
            definition = normalise_definition(body, hook.definition["bindings"])
            hook.change(definition, _next_date(definition, now))
            self.log.save(hook)
            return hook.definition

        found = self.log.command(apply)
        self.on_change()
        return found

    def remove(self, hook_group_id: str, hook_id: str) -> None:
        """Remove a hook; removing one that does not exist changes nothing."""

        def apply() -> None:
            hook = self.log.get(hook_key(hook_group_id, hook_id))
            if hook is not None and not hook.removed:
                hook.remove()
                self.log.save(hook)

        self.log.command(apply)
        self.on_change()

    def live(self, hook_group_id: str, hook_id: str) -> Hook:
        hook = self.log.get(hook_key(hook_group_id, hook_id))
        if hook is None or hook.removed:
            raise NotFound("No such hook")
        return hook

    def trigger_token(self, hook_group_id: str, hook_id: str) -> str:
        return self.cipher.open(self.live(hook_group_id, hook_id).sealed_token)

    def reset_trigger_token(self, hook_group_id: str, hook_id: str) -> str:
        token = slugid.nice()
        sealed = self.cipher.seal(token)

        def apply() -> None:
            hook = self.live(hook_group_id, hook_id)
            hook.reset_trigger_token(sealed)
            self.log.save(hook)

        self.log.command(apply)
        return token

    def token_matches(self, hook: Hook, token: str) -> bool:
        return hmac.compare_digest(self.cipher.open(hook.sealed_token).encode(), token.encode())
