"""The table `make bench` prints: each figure, its target, and its value on each back end, met or not.

A figure is data: a name, the target in words, and a function from one back
end's results to the value shown and whether the target was met (None where
a figure has no target, or was not measured in this run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.table import Table

FLAT_MIB_PER_10K = 1.0  # RSS growth allowed per 10k tasks and still called flat (allocator noise)

Check = Callable[[dict[str, Any]], tuple[str, bool | None]]


@dataclass(frozen=True)
class Figure:
    name: str
    target: str
    check: Check


def _rate(key: str, at_least: float | None = None) -> Check:
    def check(r: dict[str, Any]) -> tuple[str, bool | None]:
        value = r[key]["lifecycles_per_s"]
        return f"{value:.1f}/s", None if at_least is None else value >= at_least
    return check


def _ms(path: tuple[str, ...], at_most: float | None = None) -> Check:
    def check(r: dict[str, Any]) -> tuple[str, bool | None]:
        value = r
        for key in path:
            value = value[key]
        return f"{value:.2f} ms", None if at_most is None else value <= at_most
    return check


def _latency(key: str, p50_at_most: float | None = None) -> Check:
    def check(r: dict[str, Any]) -> tuple[str, bool | None]:
        p = r[key]
        return f"{p['p50_ms']:.1f} / {p['p99_ms']:.1f} ms", None if p50_at_most is None else p["p50_ms"] <= p50_at_most
    return check


def _async_vs_limit(r: dict[str, Any]) -> tuple[str, bool | None]:
    ratio = r["async_load"]["lifecycles_per_s"] / r["database_limit_concurrent"]["lifecycles_per_s"]
    return _percent(ratio), ratio >= 0.5


def _concurrent_limit(r: dict[str, Any]) -> tuple[str, bool | None]:
    limit = r["database_limit_concurrent"]
    return f"{limit['lifecycles_per_s']:.1f}/s ({limit['connections']} conn.)", None


def _serial_vs_limit(r: dict[str, Any]) -> tuple[str, bool | None]:
    return _percent(r["one_thread"]["lifecycles_per_s"] / r["database_limit_lifecycles_per_s"]), None


def _one_thread_ceiling(r: dict[str, Any]) -> tuple[str, bool | None]:
    """One thread waits for each of its requests: its own CPU and three durable commits, one after another."""
    t = r["one_thread"]
    commits_ms = 1000 / r["database_limit_lifecycles_per_s"]
    return (f"{1000 / (t['client_cpu_ms_per_lifecycle'] + commits_ms):.1f}/s"
            f" ({t['client_cpu_ms_per_lifecycle']:.2f} + {commits_ms:.2f} ms)"), None


def _client_ceiling(r: dict[str, Any]) -> tuple[str, bool | None]:
    """The client's threads share one interpreter: at one core, its CPU per lifecycle bounds the rate."""
    return f"{1000 / r['threads']['client_cpu_ms_per_lifecycle']:.1f}/s", None


def _machine_ceiling(r: dict[str, Any]) -> tuple[str, bool | None]:
    """Every core, less what the generator and the database spend per lifecycle, for a server costing nothing."""
    a = r["async_load"]
    others = a["generator_cpu_ms_per_lifecycle"] + a.get("database_cpu_ms_per_lifecycle", 0.0)
    return f"{a['machine_cores'] * 1000 / others:.1f}/s", None


def _request_floor(r: dict[str, Any]) -> tuple[str, bool | None]:
    """A lifecycle is three requests: three times what a request costs around its work."""
    per_request = r["request_floor"]["server_cpu_ms_per_request"]
    return f"{3 * per_request:.2f} ms (3 × {per_request:.2f} ms)", None


def _floor_server(r: dict[str, Any]) -> tuple[str, bool | None]:
    f = r["floor_server"]
    return f"{f['server_cpu_ms_per_lifecycle']:.2f} ms, {f['lifecycles_per_s']:.1f}/s", None


def _floor_ratio(r: dict[str, Any]) -> tuple[str, bool | None]:
    ratio = r["async_load"]["server_cpu_ms_per_lifecycle"] / r["floor_server"]["server_cpu_ms_per_lifecycle"]
    return f"{ratio:.2f}×", ratio <= 1.7


def _switches(r: dict[str, Any]) -> tuple[str, bool | None]:
    a = r["async_load"]
    voluntary = a["server_voluntary_switches_per_lifecycle"]
    involuntary = a["server_involuntary_switches_per_lifecycle"]
    text = f"{voluntary + involuntary:.1f} ({voluntary:.1f} + {involuntary:.1f})"
    floor = r.get("floor_server")
    if floor:
        floor_switches = floor["server_voluntary_switches_per_lifecycle"] + floor["server_involuntary_switches_per_lifecycle"]
        text += f"; floor server {floor_switches:.1f}"
    return text, None


def _statements(r: dict[str, Any]) -> tuple[str, bool | None]:
    from bench.statement_counts import summary

    c = r["statement_counts"]["async_load"]
    met = c["statements"] <= 12 and c["round_trips"] <= 8  # SQLite has no round trips: 0
    return summary(r["statement_counts"]), met


def _memory_nonces(r: dict[str, Any]) -> tuple[str, bool | None]:
    a, m = r["async_load"], r["async_load_memory_nonces"]
    return (f"{m['lifecycles_per_s']:.1f}/s, server CPU {m['server_cpu_ms_per_lifecycle']:.2f} ms"
            f" ({m['server_cpu_ms_per_lifecycle'] / a['server_cpu_ms_per_lifecycle'] - 1:+.0%})"), None


def _percent(ratio: float) -> str:
    return f"{ratio:.1%}" if ratio < 0.1 else f"{ratio:.0%}"


def _machine_share(r: dict[str, Any]) -> tuple[str, bool | None]:
    a = r["async_load"]
    database = f" + database {a['database_cores_busy']:.2f}" if "database_cores_busy" in a else ""
    return (f"server {a['server_cores_busy']:.2f} + generator {a['generator_cores_busy']:.2f}{database}"
            f" + rest {a['rest_cores_busy']:.2f} of {a['machine_cores']}"), None


def _threads_cpu(r: dict[str, Any]) -> tuple[str, bool | None]:
    t = r["threads"]
    return (f"{t['client_cpu_ms_per_lifecycle']:.2f} / {t['server_cpu_ms_per_lifecycle']:.2f} ms"
            f" ({t['client_cores_busy']:.2f} / {t['server_cores_busy']:.2f} cores)"), None


def _rss(r: dict[str, Any]) -> tuple[str, bool | None]:
    m = r["memory"]
    marks = ", ".join(f"{c['rss_mib']:.0f}@{_count(c['tasks'])}" for c in m["checkpoints"])
    growth = m["growth_mib_per_10k_tasks"]
    return f"{marks} MiB; {growth:+.2f} MiB/10k after {_count(m['growth_from_tasks'])}", growth <= FLAT_MIB_PER_10K if len(m["checkpoints"]) > 1 else None


def _count(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n / 1000:g}k"


def _text(key: str) -> Check:
    return lambda r: (r[key], None)


def _workers_load(r: dict[str, Any]) -> tuple[str, bool | None]:
    a = r["async_load_workers"]
    return (f"{a['lifecycles_per_s']:.1f}/s, server CPU {a['server_cpu_ms_per_lifecycle']:.2f} ms"
            f" (server {a['server_cores_busy']:.2f} cores)"), None


def figures(threads: int, concurrency: int, server_workers: int) -> list[Figure]:
    return [
        Figure("lifecycles/s, official client, 1 thread", "≥ 150/s", _rate("one_thread", 150)),
        Figure("  server CPU per lifecycle, 1 thread", "", _ms(("one_thread", "server_cpu_ms_per_lifecycle"))),
        Figure("  client CPU per lifecycle, 1 thread", "", _ms(("one_thread", "client_cpu_ms_per_lifecycle"))),
        Figure("  database limit, 1 connection (3 txns/lifecycle)", "", lambda r: (f"{r['database_limit_lifecycles_per_s']:.1f}/s", None)),
        Figure("  ratio to that limit", "", _serial_vs_limit),
        Figure("  ceiling: client CPU + 3 serial commits", "", _one_thread_ceiling),
        Figure(f"lifecycles/s, official client, {threads} threads, shared queue", "≥ 250/s", _rate("threads", 250)),
        Figure("  client / server CPU per lifecycle (cores busy)", "", _threads_cpu),
        Figure("  ceiling: the client's CPU on one core", "", _client_ceiling),
        Figure(f"lifecycles/s, async generator, {concurrency} in flight", "", _rate("async_load")),
        Figure("  database limit, many connections (3 txns/lifecycle)", "", _concurrent_limit),
        Figure("  ratio to that limit", "≥ 50%", _async_vs_limit),
        Figure("  server CPU per lifecycle", "≤ 1.5 ms", _ms(("async_load", "server_cpu_ms_per_lifecycle"), 1.5)),
        Figure("  server context switches per lifecycle (waiting + preempted)", "", _switches),
        Figure("  floor: 3 authenticated requests that change nothing", "", _request_floor),
        Figure("  floor server (Hawk + one INSERT per request): CPU, rate", "", _floor_server),
        Figure("  server CPU as a ratio to that floor", "≤ 1.7×", _floor_ratio),
        Figure("statements / round trips per lifecycle (per command)", "≤ 12 / ≤ 8", _statements),
        Figure("  generator CPU per lifecycle", "", _ms(("async_load", "generator_cpu_ms_per_lifecycle"))),
        Figure("  cores busy during the load", "", _machine_share),
        Figure("  ceiling: all cores, server at zero CPU", "", _machine_ceiling),
        Figure(f"  the same on `cairn serve --workers {server_workers}`", "", _workers_load),
        Figure("  the same with Hawk nonces in memory (one process only)", "", _memory_nonces),
        Figure("dispatch latency p50 / p99", "p50 ≤ 20 ms", _latency("dispatch", 20)),
        Figure("dependency release p50 / p99", "p50 ≤ 50 ms", _latency("dependency_release", 50)),
        Figure("createTask → first log line via server p50 / p99", "", _latency("first_log_line")),
        Figure("commit → AMQP delivery p50 / p99", "", _latency("amqp_publish")),
        Figure("server RSS at checkpoints (MiB@tasks); growth", f"flat (≤ {FLAT_MIB_PER_10K:g} MiB/10k)", _rss),
        Figure("projection rebuild", "", _text("rebuild_summary")),
        Figure("auth: one request with 10,000 roles (no database)", "", _text("auth_summary")),
    ]


NOTES = """\
How to read it:
- Threads: each thread has its own official client and loops createTask → claimWork → reportCompleted
  on one task queue shared by all threads (a scheduler and a worker pool on one worker type); a thread
  completes whichever task claimWork hands it. The official client opens a connection per request.
- The async generator (bench/load.py): aiohttp, HTTP/1.1 keep-alive, a pool of one connection per
  lifecycle in flight, a real Hawk header per request (checked equal to mohawk's), one shared queue.
- `cairn serve --workers N` (PostgreSQL only): the async load again on a fresh server of N processes on
  one port; its CPU is that of all of them.
- All of it shares this machine's cores: server, client or generator, the database, and whatever else
  runs here ("rest"). When the cores busy add up to all of them, a rate is the machine's, not the server's.
- Database limits: BEGIN; INSERT one row; COMMIT, three per lifecycle, with psycopg or sqlite3, in this run.
  SQLite runs WAL with synchronous=NORMAL, as Cairn does: a commit is not flushed to disk, so its limit is
  CPU, far above any server; it has one writer at a time, so its limit with many connections is the serial one.
- Ceilings: what no server could beat on this machine in this run, from figures measured above.
  One thread waits for each answer, so a lifecycle takes at least the client's own CPU plus three durable
  commits one after another (the 1-connection limit). Many client threads share one interpreter, so the
  client's CPU per lifecycle at one core bounds them. Under the async load, a server that cost nothing would
  still leave the generator and the database to share the cores; that one holds the database's work per
  lifecycle as Cairn's statements make it. A target above the first two ceilings cannot be met here by any
  server.
- Context switches: the server's threads' switches out of their core over the same lifecycles, from /proc:
  waiting (for the GIL another thread holds, a lock, a socket, the database) and preempted. Each wait for the
  GIL is a futex call and a switch through the kernel; more threads handing the GIL to each other show here.
- Floor: the server's CPU for auth.currentScopes under the same load: Hawk (and, with the database nonce
  store, recording the nonce), routing, JSON out, and nothing else. A lifecycle makes three requests, so
  three of these are what its server CPU cannot go below without a cheaper HTTP and Hawk path.
- Floor server (bench/floor_server.py): Starlette + uvicorn + Cairn's Hawk check (nonces in memory) + one
  autocommit INSERT per request, under the same async generator in the same run: what any server that
  authenticates and durably records each request spends. Cairn's server CPU is shown as a ratio to it.
- Hawk nonces in memory: the async load again on a fresh server with CAIRN_HAWK_NONCE_STORE=memory (the
  default on SQLite). On PostgreSQL the default records each nonce in a table every process shares (one
  autocommit statement and round trip per request), so a replay is refused whichever process it reaches;
  in memory a replay sent to another process within the 15-minute window is accepted. The difference is
  what that guarantee costs.
- Statements / round trips: counted inside a separate server (bench/counted_serve.py wraps the drivers) under
  the async generator, everything the server process sends per lifecycle (log followers, nonces, empty
  claimWork calls included); then per command, one at a time. A round trip is one wait for the database's
  answer: statements pipelined and answered together count once. SQLite has no round trips.
- Server RSS: VmRSS of the server's process tree at each checkpoint on a fresh server; growth is counted
  from the third checkpoint (5k) on, after warm-up (from the first if there are fewer than four). The server
  runs with CAIRN_HAWK_NONCES=3000 so that the nonce store, bounded at 250,000 (44 MiB) by default, is full
  by then. --rss-tasks sets the count (1000000 for the full figure).
"""


def table(results: dict[str, dict[str, Any]], backends: list[str], title: str,
          rows: list[Figure]) -> tuple[Table, list[dict[str, Any]]]:
    """The rich table and the same cells as records for the JSON file."""
    grid = Table(title=title)
    grid.add_column("figure")
    grid.add_column("target")
    for backend in backends:
        grid.add_column(backend, justify="right")
    records = []
    for figure in rows:
        cells = []
        for backend in backends:
            try:
                value, met = figure.check(results[backend])
            except KeyError:
                value, met = "not run", None
            mark = "" if met is None else (" [green]✓[/]" if met else " [red]✗[/]")
            cells.append(value + mark)
            records.append({"figure": figure.name.strip(), "target": figure.target, "backend": backend,
                            "value": value, "met": met})
        grid.add_row(figure.name, figure.target, *cells)
    return grid, records
