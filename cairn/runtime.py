"""The composition root: one place that builds every part of a running Cairn.

Settings in, an event log, views, services, caches and background consumers
out. The API, the CLI and the tests all start Cairn through :class:`Runtime`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import time
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlparse

from starlette.concurrency import run_in_threadpool

from cairn.api.hawk import HawkAuthenticator
from cairn.api.signed_urls import DataUrls
from cairn.consumers.event_stream import EventStream
from cairn.consumers.index_expiry import IndexExpiry
from cairn.consumers.log_reader import LogReader
from cairn.consumers.log_signal import LogSignal
from cairn.consumers.pending_signal import CHANNEL as PENDING_CHANNEL
from cairn.consumers.pending_signal import PendingSignal
from cairn.consumers.pulse_derivation import DerivedMessages
from cairn.consumers.pulse_publisher import PulsePublisher
from cairn.consumers.storage_expiry import StorageExpiry
from cairn.domain.auth.anonymous_role import create_anonymous_role
from cairn.domain.auth.scopes import satisfies
from cairn.domain.auth.service import AuthService
from cairn.domain.auth.token_cipher import TokenCipher
from cairn.domain.index.service import IndexService
from cairn.domain.objects.service import ObjectService
from cairn.domain.queue.artifact_service import ArtifactService
from cairn.domain.queue.service import Claim, QueueService
from cairn.domain.queue.worker_service import WorkerService
from cairn.domain.timestamps import utcnow
from cairn.github_flow import GithubFlow
from cairn.github_runtime import GithubParts
from cairn.notify_runtime import NotifyParts
from cairn.processes import Processes
from cairn.projections.auth.cache import AuthCache, ClientUse, StaticClient
from cairn.projections.auth.hawk_nonces import nonces_for
from cairn.projections.auth.views import AuthViews
from cairn.projections.index.views import IndexReadModel, IndexViews
from cairn.projections.objects.blob_store import FileBlobStore, new_blob_key
from cairn.projections.objects.storage_reads import StorageReadModel
from cairn.projections.objects.views import ObjectViews
from cairn.projections.queue.artifact_views import ArtifactViews
from cairn.projections.queue.reads import QueueReadModel
from cairn.projections.queue.runs_analytics import RunsAnalytics
from cairn.projections.queue.views import QueueViews
from cairn.projections.queue.worker_views import WorkerReadModel, WorkerViews
from cairn.projections.store.event_log import SqlEventLog
from cairn.projections.store.notify_audience import NOBODY_ELSE, Audience
from cairn.runtime_hooks import HooksAndSecrets
from cairn.runtime_purge_cache import PurgeCacheParts
from cairn.settings import Settings

QUEUE_CLIENT_ID = "static/cairn/queue"
INDEX_CLIENT_ID = "static/cairn/index"

log = logging.getLogger("cairn")


def event_log_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's configuration for our database URL."""
    env = {"ORIGINATOR_ID_TYPE": "text", "CREATE_TABLE": "y"}
    if settings.backend == "sqlite":
        path = settings.sqlite_path
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        env.update(
            PERSISTENCE_MODULE="cairn.projections.store.sqlite",
            SQLITE_DBNAME=path,
            SQLITE_LOCK_TIMEOUT="30",
        )
        return env
    url = urlparse(settings.database_url)
    env.update(
        PERSISTENCE_MODULE="cairn.projections.store.postgres",
        POSTGRES_DBNAME=url.path.lstrip("/") or "postgres",
        POSTGRES_HOST=url.hostname or "127.0.0.1",
        POSTGRES_PORT=str(url.port or 5432),
        POSTGRES_USER=unquote(url.username or "postgres"),
        POSTGRES_PASSWORD=unquote(url.password or ""),
        POSTGRES_POOL_SIZE="8",
        POSTGRES_MAX_OVERFLOW="24",
        POSTGRES_CONNECT_TIMEOUT="10",
        POSTGRES_POOL_OPEN_TIMEOUT="10",
    )
    return env


def derive_token(secret: str, purpose: str) -> str:
    digest = hmac.new(secret.encode(), f"cairn:{purpose}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:44]


def secret_key(settings: Settings) -> str:
    """The deployment key: from the environment, else kept in the data directory."""
    if settings.secret_key:
        return settings.secret_key
    path = os.path.join(settings.data_dir, "secret.key")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    os.makedirs(settings.data_dir, exist_ok=True)
    key = TokenCipher.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    log.warning("generated a new deployment key in %s; keep it safe", path)
    return key


class Runtime:
    def __init__(self, settings: Settings, *, validate_output: bool = False):
        self.settings = settings
        self.validate_output = validate_output
        self.started = time.monotonic()
        self.log = SqlEventLog(env=event_log_env(settings))
        self.store: Any = self.log.store
        self.secret = secret_key(settings)
        self.cipher = TokenCipher(self.secret)

        # Every commit in this process moves the log: followers wake at once.
        self.log_signal = LogSignal()
        self.store.view_writers.append(self._signal_on_commit)
        # ... and read the new events once for all of them (consumers/log_reader.py).
        self.log_reader = LogReader(self.log, self.log_signal)
        # Pulse messages are derived once in this process, for the event stream and the publisher.
        self.pulse_messages = DerivedMessages(self.log)
        self.event_stream = EventStream(self.log, self.log_signal, self.pulse_messages, reader=self.log_reader)

        self.auth_views = AuthViews()
        self.store.view_writers.append(self.auth_views)

        self.pending_signal = PendingSignal()
        #: On SQLite while serving: the thread that checkpoints the WAL (``projections/store/sqlite.py``).
        self.wal_checkpointer: Any = None
        # On PostgreSQL its wake-ups carry this process's token: its own listener passes over them.
        sender = getattr(self.log.recorder, "notify_token", "")
        #: Whether other processes hear of pending work (PostgreSQL; SQLite has no other processes to tell).
        self.pending_audience = Audience(PENDING_CHANNEL) if settings.backend == "postgres" else NOBODY_ELSE
        self.queue_views = QueueViews(wake=self.pending_signal.notify, sender=sender, audience=self.pending_audience)
        self.store.view_writers.append(self.queue_views)
        self.queue_reads = QueueReadModel(self.store)
        self.queue = QueueService(self.log, self.queue_reads, settings.claim_timeout)

        self.worker_views = WorkerViews()
        self.store.view_writers.append(self.worker_views)
        self.worker_reads = WorkerReadModel(self.store)
        self.workers = WorkerService(self.log, self.worker_reads)

        # Artifacts and objects: their descriptions are events and views; their
        # data is in the blob store, moved through URLs signed with the deployment key.
        self.blob_store = FileBlobStore(settings.object_dir)
        self.artifact_views = ArtifactViews()
        self.object_views = ObjectViews()
        self.store.view_writers.extend([self.artifact_views, self.object_views])
        self.storage_reads = StorageReadModel(self.store)
        self.objects = ObjectService(self.log, self.blob_store, lambda: new_blob_key("objects"))
        self.artifacts = ArtifactService(self.log, self.objects)
        self.data_urls = DataUrls(self.secret)
        self.storage_expiry = StorageExpiry(self.artifacts, self.objects, self.storage_reads, self.blob_store)

        # The index: entries are IndexedTask events folded into views; completed
        # tasks are indexed by a log follower, expired entries by the reaper.
        self.index_views = IndexViews()
        self.store.view_writers.append(self.index_views)
        self.index_reads = IndexReadModel(self.store)
        self.index = IndexService(self.log)
        self.index_expiry = IndexExpiry(self.index, self.index_reads)

        # The queue signs each claimed run's temporary credentials with a
        # static client whose token derives from the deployment key, so every
        # process of one deployment agrees on it without more configuration.
        self.queue_client = StaticClient(QUEUE_CLIENT_ID, derive_token(self.secret, "queue"), ("*",))
        static = {QUEUE_CLIENT_ID: self.queue_client}
        # The index signs the queue URLs of non-public artifacts it redirects to.
        self.index_client = StaticClient(
            INDEX_CLIENT_ID, derive_token(self.secret, "index"), ("queue:get-artifact:*",)
        )
        static[INDEX_CLIENT_ID] = self.index_client
        if settings.root_access_token:
            static["static/root"] = StaticClient("static/root", settings.root_access_token, ("*",))
        self.auth_cache = AuthCache(self.store, self.cipher, static)
        self.auth = AuthService(self.log, self.cipher, self.auth_cache, self.auth_cache.invalidate)
        self.client_use = ClientUse(
            self.auth_cache, self.auth.record_client_use, timedelta(seconds=settings.client_last_used_delay)
        )
        # A replay must be refused whichever process it reaches: on PostgreSQL,
        # where several may serve, nonces are shared through the database.
        self.nonces = nonces_for(settings.nonce_store, self.store, settings.hawk_nonces)
        self.authenticator = HawkAuthenticator(
            self.auth_cache.lookup_client, self.auth_cache.expand, satisfies, nonces=self.nonces,
        )

        self.notify = NotifyParts(self)
        # Hooks and secrets: their views, services and consumers (cairn/runtime_hooks.py).
        self.hooks_and_secrets = HooksAndSecrets(self)
        # CI from GitHub: deliveries, builds and requests to GitHub (cairn/github_runtime.py).
        self.github = GithubParts(self)
        # Purge requests for workers' caches (cairn/runtime_purge_cache.py).
        self.purge_cache = PurgeCacheParts(self)
        # ... and the half that acts on GitHub, when an app is configured (cairn/github_flow.py).
        self.github_flow = GithubFlow(self)

        # Read-side views: each kept by a log follower, its rows and position in one commit.
        self.runs_analytics = RunsAnalytics()

        # Every process Cairn runs beside the API (cairn/processes.py), built now, started by start().
        self.processes = Processes(self)
        self.view_followers = [self.processes["runs-analytics"]]
        self.task_indexer = self.processes["task-indexer"]
        self.reaper = self.processes["reaper"]

    def _signal_on_commit(self, session: Any, events: Any, aggregates: Any) -> None:
        session.on_commit(self.log_signal.bump)

    def uptime(self) -> float:
        return time.monotonic() - self.started

    def claim_for_worker(self, task_queue_id: str, worker_group: str, worker_id: str, count: int) -> list[Claim]:
        # A quarantined worker claims nothing; claimWork then waits as usual.
        return self.queue.claim_work(task_queue_id, worker_group, worker_id, count, utcnow())

    async def start(self) -> None:
        self.pending_signal.attach(asyncio.get_running_loop())
        await run_in_threadpool(create_anonymous_role, self.log, self.auth, self.settings.anonymous_role)
        if self.settings.backend == "postgres":
            self.pending_signal.listen(self.settings.database_url, own=self.log.recorder.notify_token,
                                       audience=self.pending_audience)
            self.log_signal.listen(self.settings.database_url, channel=self.log.recorder.channel_name,
                                   own=self.log.recorder.notify_token, audience=self.log.recorder.audience)
        else:
            # The WAL's pages go back into the database beside the commits, not in one of them.
            self.wal_checkpointer = self.log.recorder.checkpoint_beside_commits(self.settings.sqlite_path)
        await self.processes.start()

    def make_pulse_publisher(self) -> PulsePublisher:
        return PulsePublisher(self.pulse_messages, self.settings.amqp_url)

    async def stop(self) -> None:
        await self.processes.stop()
        self.pending_signal.stop()
        self.log_signal.stop()
        self._checkpoint_with_commits()

    def _checkpoint_with_commits(self) -> None:
        checkpointer, self.wal_checkpointer = self.wal_checkpointer, None
        if checkpointer is not None:
            self.log.recorder.checkpoint_with_commits(checkpointer)

    def close(self) -> None:
        # Background threads must not outlive the runtime, even when the
        # server's shutdown did not get as far as stop(): stopping is idempotent.
        self.processes.close()
        self.github_flow.close()
        self.pending_signal.stop()
        self.log_signal.stop()
        self._checkpoint_with_commits()
        self.log.close()
