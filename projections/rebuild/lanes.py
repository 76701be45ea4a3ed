"""Folding a long rebuild on every core: the projections divided into lanes.

Projections do not read one another's tables, so a rebuild can divide them
between processes. Each lane is a process of its own: it reads the log,
folds aggregates if its write-side projections read them
(``Projection.aggregates_read_by``), stages its
projections' tables in memory and COPYs them into the scratch tables this
process created (``Replay.stage``). A lane makes its projections again
from their classes, with no arguments: what a projection folds must not
depend on how it was made (one that needs arguments keeps the rebuild in
one process). When every lane has committed, this
process takes the positions they reached and goes on as a rebuild in one
process would: chasing the tail, then the swap. A lane that fails, or
finds a handler reading a table outside the rebuild, ends the rebuild
(or, for the latter, restarts it without staging) as it would in one
process.

How to divide is measured, not guessed: the first few thousand events are
folded here once, timing each projection, the aggregate fold and the
reading; the division is the one whose slowest lane is fastest. Each lane
pays the reading and (with write-side projections that read aggregates)
the fold again, and
holds its own aggregates and staging database in memory, so a division
that saves too little is not made; ``cairn projections rebuild --lanes 1``
folds in one process.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import queue
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from cairn.projections.rebuild.replay import Replay, Target, collector_paused
from cairn.projections.rebuild.state_folder import StateFolder

#: Below this many events a rebuild stays in one process: starting lanes costs a second or two.
LANE_MIN_EVENTS = 100_000
#: Events folded here to measure what each projection costs.
SAMPLE_EVENTS = 10_000
#: A division must make the slowest lane at least this much faster than one process.
WORTHWHILE = 0.8


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan(replay: Replay, limits: Mapping[str | None, int]) -> list[list[int]]:
    """Indexes into ``replay.targets``, one list per lane; one lane (or none) means fold here."""
    lanes = min(replay.lanes or cores(), len(replay.targets))
    if lanes < 2 or replay.remaining(limits) < LANE_MIN_EVENTS:
        return []
    if not all(_made_anew(t.projection) for t in replay.targets):
        return []
    costs, fold, reading = _sample(replay, {k: min(v, SAMPLE_EVENTS) for k, v in limits.items()})
    folds = [not t.read_side and t.projection.aggregates_read_by is None for t in replay.targets]

    def cost(lane: list[int]) -> float:
        return reading + (fold if any(folds[i] for i in lane) else 0.0) + sum(costs[i] for i in lane)

    everything = list(range(len(replay.targets)))
    best, best_cost = [everything], cost(everything)
    for assignment in _assignments(len(everything), lanes):
        division = [[i for i in everything if assignment[i] == lane] for lane in range(lanes)]
        division = [lane for lane in division if lane]
        slowest = max(map(cost, division))
        if slowest < best_cost:
            best, best_cost = division, slowest
    return best if best_cost < WORTHWHILE * cost(everything) else []


def _made_anew(projection: Any) -> bool:
    """Whether a lane can make this projection again: from its class, with no arguments."""
    try:
        type(projection)()
    except TypeError:
        return False
    return True


def _assignments(targets: int, lanes: int) -> Any:
    """Every way of putting targets in lanes (target 0 always in lane 0), or a greedy few when too many."""
    if lanes ** (targets - 1) <= 50_000:
        for rest in itertools.product(range(lanes), repeat=targets - 1):
            yield (0, *rest)
    else:
        for offset in range(lanes):
            yield tuple((i + offset) % lanes for i in range(targets))


class _Timed:
    """A projection whose calls are timed (CPU seconds of the calling thread, less the timing's own)."""

    def __init__(self, projection: Any, overhead: float):
        self.__wrapped__ = projection
        self.overhead = overhead
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    def __call__(self, session: Any, *args: Any) -> None:
        held = getattr(session, "held_seconds", {})  # charged to their own projection in the end
        before = sum(held.values())
        started = time.thread_time()
        self.__wrapped__(session, *args)
        self.seconds += time.thread_time() - started - self.overhead - (sum(held.values()) - before)


class _TimedFolder(StateFolder):
    seconds = 0.0
    overhead = 0.0

    def fold(self, event: Any) -> Any:
        started = time.thread_time()
        try:
            return super().fold(event)
        finally:
            self.seconds += time.thread_time() - started - self.overhead


def _timing_overhead() -> float:
    """What timing one call costs, itself."""
    calls = 2000
    started = time.thread_time()
    for _ in range(calls):
        time.thread_time() - time.thread_time()
    return (time.thread_time() - started) / calls


def _sample(replay: Replay, limits: Mapping[str | None, int]) -> tuple[list[float], float, float]:
    """CPU seconds, over the first events: each target's, the aggregate fold's, and the rest (reading).

    What the replay costs whatever it folds (opening the staging database,
    starting the query) is measured on an empty range and left out.
    """
    overhead = _timing_overhead()
    timed = [_Timed(t.projection, overhead) for t in replay.targets]
    probes = [
        Replay(
            replay.event_log,
            [Target(p, t.consumer, t.position) for p, t in zip(timed, replay.targets)],  # type: ignore[arg-type]
            replay.suffix,
            lanes=1,
        )
        for _ in range(2)
    ]
    probes[1].folder = folder = _TimedFolder(replay.event_log)
    folder.overhead = overhead
    spent = []
    with collector_paused():
        for probe, upto in zip(probes, ({k: 0 for k in limits}, limits)):
            started = time.process_time()
            probe.stage(upto, copy=False)
            spent.append(time.process_time() - started)
    # Held writes are applied late, often outside any projection's call: charge them to their own.
    costs = [
        t.seconds
        + sum(
            probes[1].held_seconds.get(name, 0.0)
            for name in [*getattr(t, "last_write_wins", {}), *getattr(t, "short_lived", {})]
        )
        for t in timed
    ]
    return costs, folder.seconds, max(0.0, spent[1] - spent[0] - sum(costs) - folder.seconds)


@dataclass(frozen=True)
class _Lane:
    number: int
    log_class: type
    env: dict[str, str]
    targets: list[tuple[type, str | None, int]]
    suffix: str
    limits: dict[str | None, int]
    read_batch: int


def run(replay: Replay, division: list[list[int]], limits: Mapping[str | None, int]) -> bool:
    """Fold each lane of ``division`` in a process of its own; False if the replay must go unstaged."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    # The schema is there already; a lane needs a connection or two, not a pool.
    env = dict(replay.event_log.env)
    prefix = replay.event_log.env.name.upper() + "_"
    for key, value in {"CREATE_TABLE": "n", "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "2"}.items():
        env[key] = env[prefix + key] = value
    base = _Lane(0, type(replay.event_log), env, [], replay.suffix, dict(limits), replay.read_batch)
    processes = []
    with _main_module_left_out():
        for number, lane in enumerate(division):
            targets = [
                (type(replay.targets[i].projection), replay.targets[i].consumer, replay.targets[i].position)
                for i in lane
            ]
            process = context.Process(
                target=_fold_lane,
                args=(replace(base, number=number, targets=targets), messages),
                name=f"cairn-rebuild-lane-{number}",
                daemon=True,
            )
            process.start()
            processes.append(process)
    results: dict[int, dict[str, Any]] = {}
    progress = _Progress(replay, division)
    try:
        while len(results) < len(processes):
            try:
                kind, number, value = messages.get(timeout=1.0)
            except queue.Empty:
                for number, process in enumerate(processes):
                    if number not in results and not process.is_alive():
                        raise RuntimeError(f"rebuild lane {number} ended (exit code {process.exitcode}) without a word")
                continue
            if kind == "at":
                progress.lane_at(number, *value)
            elif kind == "done":
                results[number] = value
                progress.lane_at(number, value["written"], value["positions"])
            else:
                raise RuntimeError(f"rebuild lane {number} failed:\n{value}")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    replay.lane_report = [
        {"targets": [replay.targets[i].name for i in lane], **{k: results[n][k] for k in ("seconds", "cpu")}}
        for n, lane in enumerate(division)
    ]
    if not all(r["staged"] for r in results.values()):
        return False
    for number, lane in enumerate(division):
        for i, position in zip(lane, results[number]["positions"]):
            replay.targets[i].position = position
    written = [results[n]["written"] for n, lane in enumerate(division) if any(not replay.targets[i].read_side for i in lane)]
    replay.written = min(written) if written else replay.written
    return True


@contextmanager
def _main_module_left_out() -> Iterator[None]:
    """Lanes started meanwhile do not run this process's main module first, as spawned processes do.

    A lane needs nothing from it (what it runs and folds comes from this
    package and the projections' modules), and the main module of a command
    (``cairn``, a benchmark) imports the whole application: over half a
    second of each lane's start.
    """
    main = sys.modules["__main__"]
    saved = {name: main.__dict__[name] for name in ("__spec__", "__file__") if name in main.__dict__}
    main.__spec__ = None
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        main.__dict__.update(saved)


class _Progress:
    """The replay's progress, from where its lanes say they are (each lane reads the whole log)."""

    def __init__(self, replay: Replay, division: list[list[int]]):
        self.replay = replay
        self.division = division
        self.written = replay.written
        self.positions = [t.position for t in replay.targets]

    def lane_at(self, number: int, written: int, positions: list[int]) -> None:
        advanced = 0
        lane = self.division[number]
        if any(not self.replay.targets[i].read_side for i in lane) and written > self.written:
            advanced, self.written = written - self.written, written
        for i, position in zip(lane, positions):
            if self.replay.targets[i].read_side and position > self.positions[i]:
                advanced, self.positions[i] = advanced + position - self.positions[i], position
        if advanced:
            self.replay.progress(advanced)


def _fold_lane(lane: _Lane, messages: Any) -> None:
    """A lane's process: fold its targets into staging and COPY them in, then report where they got.

    The lane's objects (its aggregates, above all) live until it is done:
    the cycle collector stays off for its whole life, and once it has
    reported, the process ends without freeing them one by one, which
    would take seconds the rebuild waits for.
    """
    gc.disable()
    log = None
    try:
        log = lane.log_class(env=lane.env)
        targets = [Target(cls(), consumer, position) for cls, consumer, position in lane.targets]
        replay = Replay(
            log,
            targets,
            lane.suffix,
            progress=lambda n: messages.put(("at", lane.number, (replay.written, [t.position for t in targets]))),
            read_batch=lane.read_batch,
            lanes=1,
        )
        started, cpu = time.perf_counter(), time.process_time()
        staged = replay.stage(lane.limits)
        result = {
            "staged": staged,
            "written": replay.written,
            "positions": [t.position for t in targets],
            "seconds": time.perf_counter() - started,
            "cpu": time.process_time() - cpu,
        }
        messages.put(("done", lane.number, result))
    except BaseException:
        messages.put(("failed", lane.number, traceback.format_exc()))
    finally:
        if log is not None:
            log.close()
    messages.close()
    messages.join_thread()  # every message is in the pipe
    os._exit(0)
