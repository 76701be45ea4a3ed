"""`make bench`: Cairn's figures against this machine's own limits, in one run.

Prints one table — each figure, its target, its value on SQLite and on
PostgreSQL (when reachable; CAIRN_BENCH_POSTGRES), met or not — and writes
``bench/results/bench-<time>.json``. Each back end gets fresh servers:
one for throughput and latency, one with RabbitMQ for the AMQP delay (when
RabbitMQ is up), one for memory against the number of tasks, and on
PostgreSQL one of several processes (``--server-workers``) for the async
load again.
The defaults take under ten minutes on two cores; the options scale it up,
e.g. ``--rss-tasks 1000000`` for the million-task memory figure, and
``--profile`` records the server with py-spy under the async load
(``make bench BENCH_ARGS="--rss-tasks 100000 --profile"``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from bench import floor_server, lifecycle, live_log_latency, load_figures, memory, procstat, report, statement_counts

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BEGAN = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - BEGAN:6.0f} s] {message}", file=sys.stderr, flush=True)


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated (postgres only when reachable)")
    parser.add_argument("--lifecycles", type=int, default=300, help="lifecycles timed with one client thread")
    parser.add_argument("--threads", type=int, default=16, help="client threads for the threaded figure")
    parser.add_argument("--thread-lifecycles", type=int, default=600, help="lifecycles timed with --threads threads")
    parser.add_argument("--concurrency", type=int, default=64, help="lifecycles in flight in the async generator")
    parser.add_argument("--load-lifecycles", type=int, default=1500, help="lifecycles timed with the async generator")
    parser.add_argument("--rss-tasks", type=int, default=10_000,
                        help="tasks run through a fresh server for the memory figure (e.g. 100000, 1000000; 0 skips)")
    parser.add_argument("--samples", type=int, default=50, help="samples per latency figure")
    parser.add_argument("--rebuild-events", type=int, default=100_000, help="events in the rebuild figure (0 skips)")
    parser.add_argument("--server-workers", type=int, default=2,
                        help="on PostgreSQL, the async load again on `cairn serve --workers N` (1 skips)")
    parser.add_argument("--count-lifecycles", type=int, default=400,
                        help="lifecycles on a server that counts its SQL statements and round trips (0 skips)")
    parser.add_argument("--profile", action="store_true",
                        help="also record the server with py-spy under the async load (a speedscope file)")
    parser.add_argument("--quick", action="store_true", help="small counts everywhere: checks that the bench runs")
    args = parser.parse_args()
    if args.profile and load_figures.py_spy() is None:
        parser.error("--profile needs py-spy: .venv/bin/pip install py-spy")
    if args.quick:
        args.lifecycles, args.thread_lifecycles, args.load_lifecycles = 30, 100, 200
        args.rss_tasks, args.samples, args.rebuild_events = 2000, 5, 2000
        args.count_lifecycles = 100
    return args


def available_backends(wanted: list[str]) -> list[str]:
    found = []
    for backend in wanted:
        if backend == "postgres":
            try:
                with psycopg.connect(lifecycle.PG_ADMIN, connect_timeout=2):
                    pass
            except psycopg.Error as e:
                say(f"PostgreSQL unreachable, skipped: {e}")
                continue
        found.append(backend)
    return found


def amqp() -> str:
    url = os.environ.get("CAIRN_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        return ""
    return url


def rebuild(backend: str, events: int) -> dict[str, Any]:
    """bench_rebuild.py on a database of its own, dropped afterwards."""
    scratch = tempfile.mkdtemp(prefix="cairn-bench-rebuild-")
    if backend == "postgres":
        url = lifecycle.PG_ADMIN.rsplit("/", 1)[0] + f"/cairn_bench_rebuild_{uuid.uuid4().hex[:8]}"
    else:
        url = f"sqlite:///{scratch}/cairn.db"
    try:
        done = subprocess.run([sys.executable, str(HERE / "bench_rebuild.py"), "--events", str(events)],
                              check=False, capture_output=True, text=True,
                              env={**os.environ, "CAIRN_DATABASE_URL": url})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if backend == "postgres":
            with psycopg.connect(lifecycle.PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    output = done.stdout + done.stderr[-2000:]
    found = re.search(r"^rebuild\s+([\d,]+) events in .*?= *([\d,]+) events/s.*?= *([\d,]+) events per CPU", output, re.MULTILINE)
    summary = (f"{found[2]} events/s, {found[3]}/CPU-s ({found[1]} events)" if found
               else f"failed (exit {done.returncode}), see the JSON file")
    return {"events": events, "summary": summary, "output": output}


def measure(backend: str, args: argparse.Namespace, amqp_url: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with lifecycle.Server(backend) as server:
        say(f"{backend}: {args.lifecycles} lifecycles, official client, 1 thread")
        result["one_thread"] = lifecycle.lifecycles(server, args.lifecycles)
        say(f"{backend}: {args.thread_lifecycles} lifecycles, official client, {args.threads} threads")
        result["threads"] = lifecycle.threaded_lifecycles(server, args.threads, args.thread_lifecycles)
        say(f"{backend}: {args.load_lifecycles} lifecycles, async generator, {args.concurrency} in flight")
        result["async_load"] = load_figures.measure(server, args.load_lifecycles, args.concurrency)
        say(f"{backend}: {args.load_lifecycles} lifecycles, async generator, on the floor server (Hawk + one INSERT)")
        result["floor_server"] = floor_server.measure(backend, args.load_lifecycles, args.concurrency)
        say(f"{backend}: {3 * args.load_lifecycles} authenticated requests that change nothing, {args.concurrency} in flight")
        result["request_floor"] = load_figures.request_floor(server, 3 * args.load_lifecycles, args.concurrency)
        if args.profile:
            path = RESULTS / f"profile-{backend}-{time.strftime('%Y%m%dT%H%M%S')}.speedscope.json"
            say(f"{backend}: py-spy on the server under {args.load_lifecycles} more lifecycles")
            result["profile"] = str(load_figures.profile(server, args.load_lifecycles, args.concurrency, path))
            say(f"{backend}: profile written to {path} (open in https://www.speedscope.app)")
        say(f"{backend}: the database's limits")
        serial = result["database_limit_lifecycles_per_s"] = lifecycle.database_limit(server)
        result["database_limit_concurrent"] = (
            lifecycle.concurrent_database_limit(server) if backend == "postgres"
            else {"lifecycles_per_s": serial, "connections": 1}  # one writer at a time
        )
        say(f"{backend}: dispatch and dependency release, {args.samples} samples each")
        result["dispatch"] = lifecycle.percentiles(lifecycle.dispatch_latency(server, args.samples))
        result["dependency_release"] = lifecycle.percentiles(lifecycle.release_latency(server, args.samples))
        say(f"{backend}: createTask → first log line through the server, {args.samples} tasks on a cairn worker")
        result["first_log_line"] = lifecycle.percentiles(live_log_latency.first_line_latency(server, args.samples))
    if backend == "postgres":
        say(f"{backend}: {args.load_lifecycles} lifecycles, async generator, Hawk nonces in memory (one process)")
        with lifecycle.Server(backend, settings={"CAIRN_HAWK_NONCE_STORE": "memory"}) as server:
            result["async_load_memory_nonces"] = load_figures.measure(server, args.load_lifecycles, args.concurrency)
    if args.count_lifecycles:
        say(f"{backend}: SQL statements and round trips over {args.count_lifecycles} lifecycles (a counting server)")
        result["statement_counts"] = statement_counts.measure(backend, args.count_lifecycles, args.concurrency)
    if backend == "postgres" and args.server_workers > 1:
        say(f"{backend}: {args.load_lifecycles} lifecycles, async generator, cairn serve --workers {args.server_workers}")
        with lifecycle.Server(backend, workers=args.server_workers) as server:
            result["async_load_workers"] = load_figures.measure(server, args.load_lifecycles, args.concurrency)
    if amqp_url:
        say(f"{backend}: commit → AMQP delivery")
        with lifecycle.Server(backend, amqp_url) as server:
            result["amqp_publish"] = lifecycle.percentiles(lifecycle.amqp_delay(server, amqp_url, args.samples))
    if args.rss_tasks:
        say(f"{backend}: server memory over {args.rss_tasks:,} tasks")
        result["memory"] = memory.run(backend, args.rss_tasks, args.concurrency, say)
    if args.rebuild_events:
        say(f"{backend}: projection rebuild of {args.rebuild_events:,} events")
        result["rebuild"] = rebuild(backend, args.rebuild_events)
        result["rebuild_summary"] = result["rebuild"]["summary"]
    return result


def main() -> None:
    args = options()
    RESULTS.mkdir(exist_ok=True)
    backends = available_backends(args.backends.split(","))
    amqp_url = amqp()
    results: dict[str, Any] = {}
    for backend in backends:
        results[backend] = measure(backend, args, amqp_url)

    say("scopes and auth with 10,000 roles")
    scopes = subprocess.run([sys.executable, str(HERE / "bench_scopes.py")], check=False, capture_output=True, text=True)
    auth = subprocess.run([sys.executable, str(HERE / "bench_auth.py")], check=False, capture_output=True, text=True)
    found = re.search(r"authenticate \+ authorize one request: ([\d,.]+ µs)", auth.stdout)
    for backend in backends:
        results[backend]["auth_summary"] = found[1] if found else "failed, see below"
    results["scopes"] = {"output": scopes.stdout + auth.stdout + auth.stderr[-1000:]}

    seconds = time.perf_counter() - BEGAN
    rows = report.figures(args.threads, args.concurrency, args.server_workers)
    title = f"Cairn benchmarks (one run, this machine: {procstat.cores()} cores, shared by server, client and database)"
    table, records = report.table(results, backends, title, rows)
    console = Console(width=None if sys.stdout.isatty() else 220)
    console.print(table)
    console.print(report.NOTES, highlight=False)
    console.print(results["scopes"]["output"])
    for backend in backends:
        if "rebuild" in results[backend]:
            console.print(f"rebuild on {backend}:\n{results[backend]['rebuild']['output']}")
    for backend in (b for b in backends if "memory" in results[b]):
        run = results[backend]["memory"]
        million = 1_000_000 / (run["tasks"] / run["seconds"]) / 3600
        console.print(f"memory on {backend}: ran {run['tasks']:,} tasks in {run['seconds']:.0f} s; "
                      f"--rss-tasks 1000000 would take about {million:.1f} h at that rate")
    if args.profile:
        for backend in backends:
            console.print(f"profile of the server on {backend}: {results[backend]['profile']}")

    path = RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"options": vars(args), "seconds": seconds, "checks": records, "results": results},
                               indent=2))
    console.print(f"{seconds / 60:.1f} minutes; written to {path}")


if __name__ == "__main__":
    main()
