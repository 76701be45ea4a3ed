"""Where the commands that read Cairn's own log get it: the database, or the API.

Operator commands (``projections``, ``export``, ``replay``, ``show --at``)
open the database in CAIRN_DATABASE_URL. They never create one: run where
there is none — another directory, a typo in the URL — they say so and
stop, rather than report on a new, empty world. Nor do they create a
deployment key: without one they use a throwaway key, enough to read.

``history`` also works through the API (the queue's and auth's history
endpoints) when there is no database here and TASKCLUSTER_ROOT_URL is set.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import click

from cairn.cli_output import taskcluster_options
from cairn.settings import Settings

NO_DATABASE_HINT = "set CAIRN_DATABASE_URL to the deployment's database"


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as e:
        raise click.ClickException(str(e)) from None


def local_database() -> Settings | None:
    """The settings of the database here, or None when there is none to read."""
    settings = _settings()
    if settings.backend == "sqlite" and not os.path.exists(settings.sqlite_path):
        return None
    return settings


def require_database() -> Settings:
    """The database's settings, with a key that is never written; a clear refusal when there is none."""
    settings = local_database()
    if settings is None:
        missing = _settings().sqlite_path
        raise click.ClickException(f"there is no Cairn database at {missing} ({NO_DATABASE_HINT}); none was created")
    return keyless(settings)


def keyless(settings: Settings) -> Settings:
    """``settings`` with a throwaway deployment key when none is configured or kept, so none is generated."""
    if settings.secret_key or os.path.exists(os.path.join(settings.data_dir, "secret.key")):
        return settings
    from cairn.domain.auth.token_cipher import TokenCipher

    return dataclasses.replace(settings, secret_key=TokenCipher.generate_key())


def api_available() -> bool:
    return bool(os.environ.get("TASKCLUSTER_ROOT_URL"))


#: Each kind of history: (service, endpoint) of the API that serves it.
HISTORY_ENDPOINTS = {
    "task": ("queue", "taskHistory"),
    "group": ("queue", "taskGroupHistory"),
    "client": ("auth", "clientHistory"),
    "role": ("auth", "roleHistory"),
}


def history_from_api(kind: str, entity_id: str) -> list[dict[str, Any]]:
    """Every event of an entity, through the API; [] when it was never recorded."""
    import requests
    from taskcluster.client import createApiClient
    from taskcluster.exceptions import TaskclusterRestFailure

    service, method = HISTORY_ENDPOINTS[kind]
    options = taskcluster_options()
    # Cairn's own endpoints, which the official client does not know: built from the server's reference.
    url = f"{options['rootUrl'].rstrip('/')}/references/{service}/v1/api.json"
    reference = requests.get(url, timeout=30)
    reference.raise_for_status()
    client = createApiClient(service, {"reference": reference.json()})(options)
    events: list[dict[str, Any]] = []
    query: dict[str, Any] = {}
    while True:
        try:
            page = getattr(client, method)(entity_id, query=query)
        except TaskclusterRestFailure as e:
            if e.status_code == 404 and not events:
                return []
            raise
        events.extend(page["events"])
        if not page.get("continuationToken"):
            return events
        query["continuationToken"] = page["continuationToken"]
