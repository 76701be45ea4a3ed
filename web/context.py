"""What the web UI sees of a running Cairn: one small typed context, built from the runtime in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jinja2 import Environment, FileSystemLoader, select_autoescape

from cairn.api.contexts import ApiContexts
from cairn.api.hawk import HawkAuthenticator
from cairn.domain.auth.scopes import satisfies
from cairn.projections.auth.hawk_nonces import NonceStore
from cairn.projections.queue.group_reads import GroupReadModel

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class WebContext:
    api: ApiContexts  # the API's service contexts, for the handlers the UI runs (web/api_bridge.py)
    log: Any
    store: Any
    cipher: Any
    groups: GroupReadModel
    queue_reads: Any
    storage_reads: Any
    blob_store: Any
    event_stream: Any
    log_signal: Any
    expand_scopes: Any
    lookup_client: Any
    authenticator: HawkAuthenticator
    https: bool
    public_host: str  # host[:port] of the root URL, which forms may come from behind a proxy
    templates: Environment


def web_context(runtime: Any, api: ApiContexts) -> WebContext:
    templates = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "svg"]), trim_blocks=True,
        lstrip_blocks=True,
    )
    # A session's credentials are checked on every page exactly as an API
    # request's are, but nothing is replayed here: nonces stay in memory.
    authenticator = HawkAuthenticator(
        runtime.auth_cache.lookup_client, runtime.auth_cache.expand, satisfies, nonces=NonceStore(max_entries=100_000)
    )
    return WebContext(
        api=api,
        log=runtime.log,
        store=runtime.store,
        cipher=runtime.cipher,
        groups=GroupReadModel(runtime.store),
        queue_reads=runtime.queue_reads,
        storage_reads=runtime.storage_reads,
        blob_store=runtime.blob_store,
        event_stream=runtime.event_stream,
        log_signal=runtime.log_signal,
        expand_scopes=runtime.auth_cache.expand,
        lookup_client=runtime.auth_cache.lookup_client,
        authenticator=authenticator,
        https=runtime.settings.root_url.startswith("https:"),
        public_host=urlparse(runtime.settings.root_url).netloc,
        templates=templates,
    )
