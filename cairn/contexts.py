"""The one place where each API service's context is built from the running Cairn.

A handler sees its service's context as ``call.context`` — a small frozen
dataclass in ``api/<service>/context.py`` listing exactly what it may use
(application services, read models, signers) — and never the runtime, the
event log or the store. To add a service (secrets, hooks, notify, github...):

1. declare ``<Name>Context`` in ``api/<service>/context.py``;
2. build it below in :func:`api_contexts`, under the service's name as it
   appears in its URLs (``/api/<name>/v1``);
3. list the service in ``cairn/server.py``'s ``SERVICES``; its handlers take
   ``call: Call[<Name>Context]``.

Request authentication is built here too: :class:`Authentication` checks
Hawk signatures against the auth cache and notes the clients used.
"""

from __future__ import annotations

from functools import partial

from cairn.api.auth.context import AuthContext
from cairn.api.authentication import Authentication
from cairn.api.contexts import ApiContexts
from cairn.api.events.context import EventsContext
from cairn.api.github.context import GithubContext
from cairn.api.hawk import ANONYMOUS_ROLE
from cairn.api.heartbeat import backing_services
from cairn.api.history import ReadHistory
from cairn.api.hooks.context import HooksContext
from cairn.api.index.context import IndexContext
from cairn.api.notify.context import NotifyContext
from cairn.api.objects.context import ObjectsContext
from cairn.api.purge_cache.context import PurgeCacheContext
from cairn.api.queue.context import QueueContext
from cairn.api.relay.context import RelayContext
from cairn.api.secrets.context import SecretsContext
from cairn.api.signed_urls import DataLinks
from cairn.consumers.pending_signal import FALLBACK_RECHECK
from cairn.projections.auth.views import AuthReadModel
from cairn.projections.history import read_history
from cairn.projections.queue.group_history import group_history_page
from cairn.projections.relay.live_logs import LiveLogStore
from cairn.projections.relay.relay_upkeep import run_state
from cairn.projections.relay.shell_sessions import ShellStore
from cairn.runtime import Runtime


def log_history(runtime: Runtime) -> ReadHistory:
    """One aggregate's recorded events, read from the runtime's event log."""
    return partial(read_history, runtime.log)


def api_contexts(runtime: Runtime) -> ApiContexts:
    history = log_history(runtime)
    links = DataLinks(runtime.data_urls, runtime.settings.root_url)
    authentication = Authentication(runtime.authenticator, runtime.client_use)
    services = {
        "queue": QueueContext(
            service=runtime.queue,
            reads=runtime.queue_reads,
            workers=runtime.workers,
            worker_reads=runtime.worker_reads,
            artifacts=runtime.artifacts,
            storage=runtime.storage_reads,
            wake=runtime.pending_signal,
            recheck=FALLBACK_RECHECK,
            credentials=runtime.queue_client,
            links=links,
            history=history,
            group_history=partial(group_history_page, runtime.log),
            validate_output=runtime.validate_output,
        ),
        "auth": AuthContext(
            service=runtime.auth,
            reads=AuthReadModel(runtime.store),
            cache=runtime.auth_cache,
            history=history,
            authentication=authentication,
        ),
        "index": IndexContext(
            service=runtime.index,
            reads=runtime.index_reads,
            root_url=runtime.settings.root_url,
            signer=runtime.index_client,
            anonymous_scopes=partial(runtime.auth_cache.expand, [ANONYMOUS_ROLE]),
        ),
        "object": ObjectsContext(
            service=runtime.objects, storage=runtime.storage_reads, links=links, blobs=runtime.blob_store
        ),
        "events": EventsContext(stream=runtime.event_stream),
        "secrets": SecretsContext(
            secrets=runtime.hooks_and_secrets.secrets, reads=runtime.hooks_and_secrets.secret_reads
        ),
        "hooks": HooksContext(
            hooks=runtime.hooks_and_secrets.hooks,
            firing=runtime.hooks_and_secrets.firing,
            reads=runtime.hooks_and_secrets.hook_reads,
            task_states=runtime.hooks_and_secrets.task_states,
        ),
        "notify": NotifyContext(
            notify=runtime.notify.service, reads=runtime.notify.reads, configured=runtime.notify.configured
        ),
        "github": GithubContext(
            service=runtime.github.service,
            reads=runtime.github.reads,
            scoped_queue=runtime.github.scoped_queue,
            webhook_secret=runtime.github.webhook_secret,
            root_url=runtime.settings.root_url,
            fetch_file=runtime.github.fetch_file,
        ),
        "purge-cache": PurgeCacheContext(service=runtime.purge_cache.service, reads=runtime.purge_cache.reads),
        "relay": RelayContext(
            logs=LiveLogStore(runtime.store),
            shells=ShellStore(runtime.store),
            run_state=partial(run_state, runtime.queue_reads),
            root_url=runtime.settings.root_url,
        ),
    }
    return ApiContexts(
        authentication=authentication,
        services=services,
        uptime=runtime.uptime,
        health=partial(backing_services, runtime.store, runtime.settings),
        max_body_bytes=runtime.settings.max_body_bytes,
        unsigned_body_bytes=runtime.settings.unsigned_body_bytes,
        validate_output=runtime.validate_output,
        short_work_on_loop=runtime.settings.short_work_on_loop,
    )
