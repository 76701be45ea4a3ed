"""Learning at once that a run this worker holds was resolved elsewhere.

A running task that is cancelled, passes its deadline or loses its claim is
resolved ``exception`` by the queue, which says so on the event stream
(``GET /api/events/v1/stream``, server-sent events). The worker keeps one
subscription for every run it holds — the ``task-exception`` messages of its
task queue, ``primary.<taskId>.<runId>.<workerGroup>.<workerId>.<provisionerId>.<workerType>.#``
with any worker: a cancel names the run's worker, a passed deadline names
none, as in Taskcluster — and stops such a run as soon as its message
arrives, instead of at its next reclaim. The reclaim's 409 still catches what the stream cannot deliver (a
deployment without it, credentials without ``events:listen:`` scopes).

The stream's first line, and every message, carry a position. After a drop
the subscription reconnects with the last one as ``Last-Event-ID``, so a
cancel made while it was away still arrives, once; a read that stays silent
past three of the server's heartbeats counts as a drop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from cairn.worker.hawk_signing import hawk_header

log = logging.getLogger("cairn.worker")

EXCEPTION_EXCHANGE = "exchange/taskcluster-queue/v1/task-exception"
#: The server sends a heartbeat every 15 s: this much silence means the connection is dead.
READ_TIMEOUT = 45.0
#: Seconds before reconnecting after the first failure; doubled after each further one.
FIRST_RETRY = 0.25
LAST_RETRY = 30.0


class StreamRefused(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body.strip()[:300]}")
        self.status = status


class ResolutionStream:
    """Calls ``resolved(taskId, runId, reason)`` for each run of this task queue resolved ``exception``."""

    def __init__(
        self,
        root_url: str,
        credentials: Callable[[], dict[str, Any]],
        task_queue_id: str,
        session: aiohttp.ClientSession,
        resolved: Callable[[str, int, str], None],
    ):
        provisioner_id, worker_type = task_queue_id.split("/", 1)
        routing_key = f"primary.*.*.*.*.{provisioner_id}.{worker_type}.#"
        query = urlencode({"exchange": EXCEPTION_EXCHANGE, "routingKey": routing_key})
        self.url = f"{root_url.rstrip('/')}/api/events/v1/stream?{query}"
        self.credentials = credentials
        self.session = session
        self.resolved = resolved
        #: The position of the last message (or of the stream's start), sent back on reconnecting.
        self.last_event_id: str | None = None
        #: Set while connected, once the stream has named its position.
        self.connected = asyncio.Event()
        #: Set once the first attempt to connect has succeeded or failed (against a deployment
        #: without the stream, the worker need not wait any longer).
        self.settled = asyncio.Event()
        self.connections = 0

    async def follow(self) -> None:
        """Stay subscribed until cancelled, reconnecting from the last position after each drop."""
        failures = 0
        while True:
            try:
                await self._read()
                problem = "the stream ended"
            except StreamRefused as e:
                problem = str(e)
                # Refused (no scope, no such service): no point in asking often.
                failures = max(failures, 8)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, UnicodeDecodeError) as e:
                problem = f"{type(e).__name__}: {e}"
            finally:
                was_connected = self.connected.is_set()
                self.connected.clear()
                self.settled.set()
            failures = 0 if was_connected else failures + 1
            delay = min(FIRST_RETRY * 2.0 ** max(failures - 1, 0), LAST_RETRY)
            log.warning(
                "event stream: %s; reconnecting in %.2f s from %s (meanwhile cancelled tasks are noticed at reclaim)",
                problem, delay, self.last_event_id or "now",
            )
            await asyncio.sleep(delay)

    async def _read(self) -> None:
        headers = {"Accept": "text/event-stream", "Authorization": hawk_header(self.credentials(), "GET", self.url, b"", "")}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=READ_TIMEOUT)
        # encoded=True: the request goes out exactly as signed.
        async with self.session.get(URL(self.url, encoded=True), headers=headers, timeout=timeout) as response:
            if response.status != 200:
                raise StreamRefused(response.status, await response.text())
            event_id: str | None = None
            data: list[str] = []
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith(":"):
                    continue
                if line:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "id":
                        event_id = value
                    elif field == "data":
                        data.append(value)
                    continue
                # A blank line ends an event: its id becomes the position, its data is dispatched.
                if event_id is not None:
                    self.last_event_id = event_id
                    if not self.connected.is_set():
                        self.connections += 1
                        self.connected.set()
                        self.settled.set()
                if data:
                    self._dispatch("\n".join(data))
                event_id, data = None, []

    def _dispatch(self, data: str) -> None:
        try:
            payload = json.loads(data)["payload"]
            task_id, run_id = payload["status"]["taskId"], int(payload["runId"])
            runs = payload["status"].get("runs", [])
            reason = runs[run_id].get("reasonResolved", "exception") if run_id < len(runs) else "exception"
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            log.warning("event stream: a message that is not a task-exception message was skipped: %.200s", data)
            return
        self.resolved(task_id, run_id, reason)
