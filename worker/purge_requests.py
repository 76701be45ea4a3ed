"""Purge requests for this worker's pool, learnt from Cairn's event stream as they are made.

From the first run that mounts a cache on, the worker holds one
server-sent event stream (``/api/events/v1/stream``) open with two
exchanges, filtered to its worker pool:

- ``exchange/taskcluster-purge-cache/v1/purge-cache``: each purge request,
  acted on at once (:meth:`CacheStore.purge`);
- ``exchange/taskcluster-queue/v1/task-running``: each claim of a run in the
  pool.

The stream is in log order, so once a run's own task-running message has
arrived, every purge request made before that run was claimed has arrived
(and been acted on) before it: that is what a run waits for before it
mounts a cache (:meth:`PurgeRequests.honoured_before`) — no polling, and no
race between a purge request and the next claim.

When the stream is not there (another deployment, missing scopes, a
network failure) the worker does what generic-worker does instead: before a
run that mounts a cache it asks the purge-cache service for the requests
made since it last asked. On connecting, it asks once too, for the
requests made while it was not listening; acting on a request twice does no
harm, as only caches made before its ``before`` are purged. A reconnect
resumes from the last position seen (``Last-Event-ID``), with no gap.

The worker's credentials need ``events:listen:`` for both exchanges and
``purge-cache:purge-requests::<provisionerId>/<workerType>``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import urllib.parse
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import taskcluster.aio
from taskcluster.exceptions import TaskclusterFailure

from cairn.domain.timestamps import iso, parse_time, utcnow
from cairn.worker.caches import CacheStore
from cairn.worker.task_proxy import hawk_header

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("cairn.worker")

PURGE_EXCHANGE = "exchange/taskcluster-purge-cache/v1/purge-cache"
RUNNING_EXCHANGE = "exchange/taskcluster-queue/v1/task-running"
#: How long a run waits for its own claim to come through the stream before asking the service.
STREAM_WAIT = 5.0
#: Runs whose task-running message was seen (for runs that ask after it arrived), and requests acted on.
REMEMBERED_RUNS = 4096
#: The overlap of successive questions to the service, against clock skew (as generic-worker).
OVERLAP = timedelta(minutes=5)


class PurgeRequests:
    def __init__(self, options: dict[str, Any], task_queue_id: str, caches: CacheStore):
        self.options = options
        self.root_url = options["rootUrl"].rstrip("/")
        self.task_queue_id = task_queue_id
        self.caches = caches
        self.connected = False
        self._position: str | None = None
        self._seen: collections.OrderedDict[tuple[str, int], None] = collections.OrderedDict()
        self._acted_on: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._waiting: dict[tuple[str, int], asyncio.Event] = {}
        self._last_asked: datetime | None = None
        self._asking = asyncio.Lock()
        self._following: asyncio.Task[None] | None = None
        #: When the service was last asked on connecting to the stream afresh: it answered for every run
        #: claimed before then, whose claim may have come before the stream started, and not be on it.
        self._covered_until = float("-inf")

    def start(self, session: aiohttp.ClientSession) -> None:
        """Start following the stream, if not yet: at the first run that mounts a cache."""
        if self._following is None:
            self._following = asyncio.create_task(self.follow(session), name="purge requests")

    async def stop(self) -> None:
        if self._following is not None:
            self._following.cancel()
            await asyncio.wait([self._following])

    # the stream

    def stream_url(self) -> str:
        provisioner_id, worker_type = self.task_queue_id.split("/", 1)
        query = urllib.parse.urlencode(
            [("exchange", PURGE_EXCHANGE), ("exchange", RUNNING_EXCHANGE),
             ("routingKey", f"#.{provisioner_id}.{worker_type}.#")]
        )
        return f"{self.root_url}/api/events/v1/stream?{query}"

    async def follow(self, session: aiohttp.ClientSession) -> None:
        """Follow the stream until cancelled, reconnecting after failures."""
        import httpx  # only for a worker whose tasks mount caches

        failures = 0
        # Made in a thread: loading the certificate authorities takes a while, and would hold up every run.
        client = await asyncio.to_thread(httpx.AsyncClient, timeout=httpx.Timeout(10.0, read=60.0))
        async with client:
            while True:
                try:
                    await self._read(client, session)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # keep following whatever went wrong, but say so
                    failures += 1
                    log.warning("purge requests: the event stream failed (%s); falling back to asking the "
                                "purge-cache service until it is back", e)
                self.connected = False
                await asyncio.sleep(min(2.0 ** failures, 60.0))

    async def _read(self, client: httpx.AsyncClient, session: aiohttp.ClientSession) -> None:
        from httpx_sse import aconnect_sse

        url = self.stream_url()
        headers = {"Authorization": hawk_header(self.options["credentials"], "GET", url, b"", "")}
        if self._position is not None:
            headers["Last-Event-ID"] = self._position
        async with aconnect_sse(client, "GET", url, headers=headers) as source:
            if source.response.status_code != 200:
                body = (await source.response.aread())[:300].decode(errors="replace")
                raise RuntimeError(f"{url} answered {source.response.status_code}: {body}")
            resumed = self._position is not None
            self.connected = True
            log.info("purge requests: following the event stream for %s", self.task_queue_id)
            if not resumed:
                # The stream starts now: what came before is asked of the service, once.
                asked_at = time.monotonic()
                if await self.ask_service(session):
                    self._covered_until = asked_at
            async for event in source.aiter_sse():
                # The stream opens with an id and no data (its start position): no message, a position.
                if event.event == "message" and event.data:
                    try:
                        self._handle(orjson.loads(event.data))
                    except (ValueError, KeyError, TypeError) as e:  # one odd message does not stop the others
                        log.warning("purge requests: skipped a message that could not be read (%s): %.200s",
                                    e, event.data)
                self._position = event.id or self._position

    def _handle(self, message: dict[str, Any]) -> None:
        payload = message.get("payload", {})
        if message.get("exchange") == PURGE_EXCHANGE:
            self._act_on(payload["cacheName"], payload["before"])
        elif message.get("exchange") == RUNNING_EXCHANGE:
            key = (payload["status"]["taskId"], int(payload["runId"]))
            self._seen[key] = None
            while len(self._seen) > REMEMBERED_RUNS:
                self._seen.popitem(last=False)
            waiting = self._waiting.pop(key, None)
            if waiting is not None:
                waiting.set()

    def _act_on(self, cache_name: str, before: str) -> None:
        """Purge for one request, once: the service answers with it again (its questions overlap), and a
        cache made since, within the clock skew allowed, must not be purged over and over."""
        key = (cache_name, before)
        if key in self._acted_on:
            return
        self._acted_on[key] = None
        while len(self._acted_on) > REMEMBERED_RUNS:
            self._acted_on.popitem(last=False)
        self.caches.purge(cache_name, parse_time(before))

    # what a run waits for

    async def honoured_before(self, task_id: str, run_id: int, claimed_at: float,
                              session: aiohttp.ClientSession) -> str:
        """Return once every purge request made before this run was claimed is acted on; says how it knows.

        ``claimed_at`` is the ``time.monotonic()`` at which the worker received the claim. A run
        claimed before the service was asked on connecting is answered for by that question (its
        claim may precede the stream); any later one is on the stream.
        """
        key = (task_id, run_id)
        self.start(session)
        if key not in self._seen and claimed_at < self._covered_until:
            return "from the purge-cache service, asked as the event stream started"
        if key not in self._seen and self.connected:
            arrived = self._waiting.setdefault(key, asyncio.Event())
            try:
                await asyncio.wait_for(arrived.wait(), STREAM_WAIT)
            except TimeoutError:
                pass
            finally:
                self._waiting.pop(key, None)
        if key in self._seen:
            return "from the event stream"
        await self.ask_service(session)
        return "from the purge-cache service"

    async def ask_service(self, session: aiohttp.ClientSession) -> bool:
        """Ask the purge-cache service for the pool's requests since the last time, and act on them.

        False when it cannot be reached: caches are then kept (optimistic, as generic-worker).
        """
        async with self._asking:
            asked_at = utcnow()
            query = {"since": iso(self._last_asked - OVERLAP)} if self._last_asked else {}
            service = taskcluster.aio.PurgeCache(dict(self.options, maxRetries=2), session=session)
            try:
                found = await service.purgeRequests(self.task_queue_id, query=query)
            except (TaskclusterFailure, aiohttp.ClientError, asyncio.TimeoutError) as e:
                log.warning("purge requests: cannot ask the purge-cache service (%s); caches are kept", e)
                return False
            for request in found["requests"]:
                self._act_on(request["cacheName"], request["before"])
            self._last_asked = asked_at
            return True
