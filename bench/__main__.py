"""`make bench`: Cairn's figures against this machine's own limits, in one run.

Prints one table and writes ``bench/results/bench-<time>.json``. Runs on
SQLite always and on PostgreSQL when it is reachable (CAIRN_BENCH_POSTGRES).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from bench import lifecycle

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lifecycles", type=int, default=300)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--rebuild-events", type=int, default=100_000)
    args = parser.parse_args()

    backends = ["sqlite"]
    try:
        with psycopg.connect(lifecycle.PG_ADMIN, connect_timeout=2):
            backends.append("postgres")
    except psycopg.Error:
        pass

    amqp_url = os.environ.get("CAIRN_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        amqp_url = ""

    results: dict[str, dict] = {}
    for backend in backends:
        results[backend] = lifecycle.run(backend, args.lifecycles, args.samples, amqp_url)

    scopes = subprocess.run([sys.executable, str(HERE / "bench_scopes.py")], capture_output=True, text=True)
    auth = subprocess.run([sys.executable, str(HERE / "bench_auth.py")], capture_output=True, text=True)
    results["scopes"] = {"output": scopes.stdout + auth.stdout}

    if "postgres" in backends:
        url = lifecycle.PG_ADMIN.rsplit("/", 1)[0] + "/cairn_bench_rebuild"
        rebuild = subprocess.run(
            [sys.executable, str(HERE / "bench_rebuild.py"), "--events", str(args.rebuild_events)],
            capture_output=True, text=True, env={**os.environ, "CAIRN_DATABASE_URL": url},
        )
        results["rebuild"] = {"events": args.rebuild_events, "output": rebuild.stdout + rebuild.stderr[-2000:]}

    table = Table(title="Cairn benchmarks (one run, this machine)")
    table.add_column("figure")
    for backend in backends:
        table.add_column(backend, justify="right")

    def row(name: str, key) -> None:
        table.add_row(name, *(key(results[b]) for b in backends))

    row("lifecycles/s, 1 client thread", lambda r: f"{r['lifecycles_per_s']:.1f}")
    row("database limit: lifecycles/s at 3 durable txns", lambda r: f"{r['database_limit_lifecycles_per_s']:.1f}")
    row("ratio to the database limit", lambda r: f"{r['lifecycles_per_s'] / r['database_limit_lifecycles_per_s']:.0%}")
    row("server CPU per lifecycle", lambda r: f"{r['server_cpu_ms_per_lifecycle']:.2f} ms")
    row("dispatch latency p50 / p99", lambda r: f"{r['dispatch']['p50_ms']:.1f} / {r['dispatch']['p99_ms']:.1f} ms")
    row("dependency release p50 / p99", lambda r: f"{r['dependency_release']['p50_ms']:.1f} / {r['dependency_release']['p99_ms']:.1f} ms")
    if amqp_url:
        row("commit → AMQP delivery p50 / p99", lambda r: f"{r['amqp_publish']['p50_ms']:.1f} / {r['amqp_publish']['p99_ms']:.1f} ms")
    console = Console()
    console.print(table)
    console.print(results["scopes"]["output"])
    if "rebuild" in results:
        console.print(results["rebuild"]["output"])

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
