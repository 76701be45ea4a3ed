"""``/metrics``: what a Cairn process is doing, in Prometheus' text format.

Counted as it happens, in this process:

- ``cairn_http_requests_total`` and ``cairn_http_request_duration_seconds``,
  by service, endpoint and status (see :mod:`cairn.api.request_observer`);
- ``cairn_events_appended_total`` by event type, once their transaction commits;
- ``cairn_pulse_messages_published_total`` (each confirmed by the broker)
  and ``cairn_pulse_publish_failures_total``.

Read at scrape time:

- ``cairn_task_runs`` pending and running (claimed) per task queue, each
  consumer's ``cairn_consumer_position`` and ``cairn_consumer_lag_events``
  behind the head of the log — all from one cheap query
  (``metrics_snapshot``), the only database work a scrape does;
- ``cairn_claim_work_waiting``: claimWork calls waiting for work;
- ``cairn_db_pool_*``: the PostgreSQL connection pool's size, idle
  connections and requests waiting for one;
- the process's own, as every Prometheus client exports them:
  ``process_*`` (CPU seconds, resident memory, open files),
  ``python_info`` and ``python_gc_*`` (collections and objects collected,
  per generation; see :mod:`cairn.collector`).

Each app has its own registry, so several runtimes in one process (tests)
never share counters. With ``cairn serve --workers N`` each process answers
for itself.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cairn.projections.history import event_type

log = logging.getLogger("cairn.metrics")

#: Request durations, in seconds: claimWork long-polls for up to 20 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)


class Metrics:
    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "cairn_http_requests", "HTTP requests answered, by service, endpoint and status.",
            ["service", "endpoint", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "cairn_http_request_duration_seconds", "Time to answer an HTTP request, by service and endpoint.",
            ["service", "endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.events = Counter(
            "cairn_events_appended", "Events this process appended to the log, by type.",
            ["type"], registry=self.registry,
        )
        self.registry.register(_RuntimeCollector(runtime))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        runtime.store.view_writers.append(self._count_events)

    def observe_request(self, service: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(service, endpoint, str(status)).inc()
        self.latency.labels(service, endpoint).observe(seconds)

    def _count_events(self, session: Any, events: Iterable[Any], aggregates: Mapping[str, Any]) -> None:
        tally = Tally(event_type(e) for e in events)
        session.on_commit(lambda: self._appended(tally))

    def _appended(self, tally: Tally[str]) -> None:
        for kind, count in tally.items():
            self.events.labels(kind).inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _RuntimeCollector(Collector):
    """The gauges read from the runtime at scrape time."""

    def __init__(self, runtime: Any):
        self.runtime = runtime

    def describe(self) -> list[Any]:
        return []  # read at scrape time only: registering must not query the database

    def collect(self) -> Iterator[Any]:
        yield from self._from_database()
        yield from self._pulse()
        waiting = GaugeMetricFamily("cairn_claim_work_waiting", "claimWork calls waiting for work.")
        waiting.add_metric([], self.runtime.pending_signal.waiting())
        yield waiting
        yield from self._pool()

    def _from_database(self) -> Iterator[Any]:
        runs = GaugeMetricFamily("cairn_task_runs", "Runs pending or running (claimed), per task queue.",
                                 labels=["task_queue_id", "state"])
        positions = GaugeMetricFamily("cairn_consumer_position", "The last log position each consumer finished.",
                                      labels=["consumer"])
        lag = GaugeMetricFamily("cairn_consumer_lag_events", "Events each consumer has yet to follow.",
                                labels=["consumer"])
        head = GaugeMetricFamily("cairn_log_head_position", "The position of the newest event in the log.")
        dead = GaugeMetricFamily("cairn_consumer_dead_letters", "Events each consumer set aside after its retries failed.",
                                 labels=["consumer"])
        try:
            with self.runtime.store.reading() as session:
                rows = session.rows("metrics_snapshot")
        except Exception:
            log.warning("metrics: cannot read the database", exc_info=True)
            return
        top = max((int(r["value"]) for r in rows if r["kind"] == "head"), default=0)
        head.add_metric([], top)
        for row in rows:
            kind, name, value = row["kind"], row["name"], int(row["value"])
            if kind in ("pending", "running"):
                runs.add_metric([name, kind], value)
            elif kind == "position":
                positions.add_metric([name], value)
                lag.add_metric([name], max(top - value, 0))
            elif kind == "dead-letters":
                dead.add_metric([name], value)
        yield from (runs, positions, lag, head, dead)

    def _pulse(self) -> Iterator[Any]:
        # The publisher is a consumer run by its follower, when this process runs one.
        publisher = getattr(self.runtime.processes.get("pulse-publisher"), "consumer", None)
        if publisher is None:
            return
        published = CounterMetricFamily(
            "cairn_pulse_messages_published", "Pulse messages this process published, each confirmed by the broker."
        )
        published.add_metric([], publisher.published)
        failures = CounterMetricFamily(
            "cairn_pulse_publish_failures", "Times publishing to RabbitMQ failed and resumed from the last confirm."
        )
        failures.add_metric([], publisher.failures)
        yield from (published, failures)

    def _pool(self) -> Iterator[Any]:
        pool = getattr(getattr(self.runtime.log.recorder, "datastore", None), "pool", None)
        get_stats = getattr(pool, "get_stats", None)
        if get_stats is None:
            return  # SQLite: no pool to report
        stats = get_stats()
        size = GaugeMetricFamily("cairn_db_pool_connections", "Connections the database pool holds.")
        size.add_metric([], stats.get("pool_size", 0))
        idle = GaugeMetricFamily("cairn_db_pool_idle_connections", "Pool connections not in use.")
        idle.add_metric([], stats.get("pool_available", 0))
        waiting = GaugeMetricFamily("cairn_db_pool_requests_waiting", "Requests waiting for a pool connection.")
        waiting.add_metric([], stats.get("requests_waiting", 0))
        limit = GaugeMetricFamily("cairn_db_pool_max_connections", "The most connections the pool may open.")
        limit.add_metric([], stats.get("pool_max", 0))
        yield from (size, idle, waiting, limit)


def metrics_routes(metrics: Metrics) -> list[Route]:
    async def scrape(request: Request) -> Response:
        body = await run_in_threadpool(metrics.exposition)
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [Route("/metrics", scrape, methods=["GET"])]
