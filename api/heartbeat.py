"""The monitoring endpoints every Taskcluster service answers, besides ``ping``.

- ``lbheartbeat``: the process is up (for load balancers); touches nothing;
- ``heartbeat``: the process can reach what it depends on — the database
  always, RabbitMQ when Pulse is configured; 200 when all are reachable,
  503 otherwise, with a Dockerflow-style body naming each check;
- ``version``: the Dockerflow version object of the running code.

None needs credentials or scopes, as at Taskcluster.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, metadata
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

log = logging.getLogger("cairn.health")

#: How long one check may take before its service counts as unreachable.
CHECK_TIMEOUT = 5.0


def database_reachable(store: Any) -> None:
    """Raise unless the event store answers a trivial query."""
    with store.reading() as session:
        session.cursor.execute("SELECT 1")
        session.cursor.fetchall()


async def amqp_reachable(amqp_url: str, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise unless RabbitMQ accepts a connection (closed at once)."""
    import aio_pika

    connection = await aio_pika.connect(amqp_url, timeout=timeout)
    await connection.close()


async def backing_services(store: Any, settings: Any) -> dict[str, str]:
    """``{check: "ok" | "error: <reason>"}`` for each service this process depends on."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(run_in_threadpool(database_reachable, store), CHECK_TIMEOUT)
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"error: {type(e).__name__}"
        log.warning("heartbeat: the database is unreachable", exc_info=True)
    amqp_url = settings.amqp_url
    if amqp_url:
        try:
            await asyncio.wait_for(amqp_reachable(amqp_url), CHECK_TIMEOUT + 1)
            checks["pulse"] = "ok"
        except Exception as e:
            checks["pulse"] = f"error: {type(e).__name__}"
            log.warning("heartbeat: RabbitMQ is unreachable", exc_info=True)
    return checks


async def heartbeat(call: Any) -> Response:
    """Respond with a service heartbeat: whether the database (and RabbitMQ, if configured) answer."""
    checks = await call.health()
    healthy = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if healthy else "error", "checks": checks, "details": {}}
    return Response(orjson.dumps(body), status_code=200 if healthy else 503, media_type="application/json")


def lbheartbeat(call: Any) -> dict[str, Any]:
    """Respond without doing anything; for load balancers to check that the service is up."""
    return {}


def version(call: Any) -> dict[str, Any]:
    """Respond with the Dockerflow version object of the running Cairn."""
    return version_object()


@lru_cache(maxsize=1)
def version_object() -> dict[str, Any]:
    try:
        meta = metadata("cairn")
    except PackageNotFoundError:
        return {"name": "cairn", "version": "unknown"}
    found: dict[str, Any] = {"name": "cairn", "version": meta["Version"]}
    for url in meta.get_all("Project-URL") or []:
        label, _, address = url.partition(",")
        if label.strip().lower() in ("source", "repository"):
            found["source"] = address.strip()
    return found


def add_monitoring_endpoints(service: Any) -> None:
    """Declare lbheartbeat, version and heartbeat on ``service``."""
    service.endpoint("lbheartbeat", "GET", "/__lbheartbeat__", title="Load Balancer Heartbeat",
                     category="Monitoring")(lbheartbeat)
    service.endpoint("version", "GET", "/__version__", title="Taskcluster Version", category="Monitoring")(version)
    service.endpoint("heartbeat", "GET", "/__heartbeat__", title="Heartbeat", category="Monitoring")(heartbeat)
