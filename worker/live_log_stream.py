"""Streaming each run's log to Cairn as it is written, so anyone can follow it there.

The worker needs no inbound connection: for each run it opens the log with
Cairn's relay service (``appendLog`` at offset 0 with what the log holds so
far, under a token of its own choosing) and points ``public/logs/live.log``
at the URL Cairn answers with;
then every write to the log is sent on, in order, at the offset where it
belongs, with the run's current claim credentials. A failed append is sent
again (the relay skips bytes it already holds), so nothing is lost while
Cairn is briefly unreachable. When the log is closed the last append is
marked ``final``: readers' streams end there. ``drain`` waits for that
before the worker uploads the log and reports the run.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from typing import Any

import aiohttp
from taskcluster.exceptions import TaskclusterFailure, TaskclusterRestFailure

from cairn.worker.relay_client import relay_client

log = logging.getLogger("cairn.worker")

#: How long ``drain`` waits for the rest of a closed log to reach Cairn, in seconds.
DRAIN_TIMEOUT = 30.0
#: The most sent in one append.
MAX_APPEND = 256 * 1024


class LogStream:
    """One run's log on its way to Cairn."""

    def __init__(self, run: Any, task_log: Any):
        self.run = run
        self.task_log = task_log
        self.token = secrets.token_urlsafe(24)
        self.sent = 0
        self.sending: asyncio.Task[None] | None = None

    async def append(self, data: bytes, final: bool = False) -> dict[str, Any]:
        run = self.run
        client = relay_client(run.worker.root_url, run.credentials, run.session)
        body = {"token": self.token, "offset": self.sent, "data": base64.b64encode(data).decode(), "final": final}
        answer = await client.appendLog(run.task_id, str(run.run_id), body)
        self.sent += len(data)
        return answer

    async def send_all(self) -> None:
        """Every write to the log after what was sent already, until it is closed; then the final mark."""
        pending = b""
        skip = self.sent
        async for chunk in self.task_log.follow():
            if skip:
                chunk, skip = chunk[skip:], max(0, skip - len(chunk))
            pending += chunk
            if self.task_log.closed:
                # The rest follows at once: it goes with the final mark, in as few appends as it fits.
                continue
            while pending:
                part, pending = pending[:MAX_APPEND], pending[MAX_APPEND:]
                if not await self._surely(part):
                    return
        while len(pending) > MAX_APPEND:
            part, pending = pending[:MAX_APPEND], pending[MAX_APPEND:]
            if not await self._surely(part):
                return
        await self._surely(pending, final=True)

    async def _surely(self, data: bytes, final: bool = False) -> bool:
        """Send ``data``, again and again if need be; False if Cairn refuses it for good."""
        delay = 0.5
        while True:
            try:
                await self.append(data, final)
                return True
            except TaskclusterRestFailure as e:
                if e.status_code in (400, 403, 404, 409):
                    log.warning("%s: the live log was refused (%s); it is no longer streamed", self.run, e)
                    return False
                failure: Exception = e
            except (TaskclusterFailure, aiohttp.ClientError, asyncio.TimeoutError) as e:
                failure = e
            log.warning("%s: could not stream the live log, trying again in %.0f s: %s", self.run, delay, failure)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


class ServerLiveLogs:
    """The live logs of this worker's runs, each streamed to Cairn while its run lasts."""

    def __init__(self) -> None:
        self._streams: dict[Any, LogStream] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        for stream in list(self._streams.values()):
            if stream.sending is not None:
                stream.sending.cancel()

    async def publish(self, task_log: Any, run: Any) -> None:
        """Open the run's log with Cairn, point ``public/logs/live.log`` at it, and start streaming."""
        stream = LogStream(run, task_log)
        # What the log holds already goes with the opening append: a reader who
        # finds the artifact finds those lines there.
        answer = await stream.append(task_log.path.read_bytes()[:MAX_APPEND])
        self._streams[task_log] = stream
        stream.sending = asyncio.create_task(stream.send_all(), name=f"{run} live log")
        await run.artifacts.point_log_at(answer["url"])

    async def drain(self, task_log: Any) -> None:
        """Wait until the closed ``task_log`` has reached Cairn, whole (at most DRAIN_TIMEOUT)."""
        stream = self._streams.get(task_log)
        if stream is None or stream.sending is None:
            return
        done, _ = await asyncio.wait([stream.sending], timeout=DRAIN_TIMEOUT)
        if not done:
            log.warning("%s: the end of the live log did not reach Cairn in time", stream.run)

    def unpublish(self, task_log: Any) -> None:
        """The run is over: stop streaming its log, if that is still going on."""
        stream = self._streams.pop(task_log, None)
        if stream is not None and stream.sending is not None:
            stream.sending.cancel()
