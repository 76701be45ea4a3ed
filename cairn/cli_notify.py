"""``cairn notifications``: what the notify service sent, skipped or failed to send, from its view.

Reads the database directly (CAIRN_DATABASE_URL), as ``cairn history`` does;
``cairn history notification <id>`` then shows one notification's events.
"""

from __future__ import annotations

import click

from cairn.cli_history import opened_runtime
from cairn.cli_output import CairnCommand, json_option, print_json, print_table, state_text

STATES = ("requested", "sent", "skipped", "failed")


@click.command(cls=CairnCommand)
@click.option("--task", "task_id", help="The notifications a task's routes asked for.")
@click.option("--state", type=click.Choice(STATES), default="failed", show_default=True,
              help="Without --task: the latest notifications in this state.")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
def notifications(task_id: str | None, state: str, limit: int, as_json: bool) -> None:
    """Notifications: a task's, or the latest in a state (failed ones, by default)."""
    with opened_runtime() as runtime:
        reads = runtime.notify.reads
        found = reads.of_task(task_id) if task_id else reads.in_state(state, limit)
    if as_json:
        print_json({"notifications": found})
        return
    print_table(
        ["id", "channel", "address", "state", "attempts", "requested", "last error"],
        [
            [n["notificationId"], n["channel"], n["address"], state_text(n["state"]), n["attempts"],
             n["requested"], n["lastError"] or ""]
            for n in found
        ],
        fold=["last error"],
    )
