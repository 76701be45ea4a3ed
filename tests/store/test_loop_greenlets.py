"""Blocking code run on the event loop, its waits the loop's (``loop_greenlets.py``).

What runs in :func:`run_on_loop` sees its caller's context and gives back
its result or its error; while it waits (for PostgreSQL, for a sleep, for a
thread, for a lock another greenlet holds) the loop goes on serving other
coroutines, which a ticker shows; and what it waits for in vain when
cancelled is given back.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from cairn.projections.store import loop_greenlets
from cairn.projections.store.eventsourcing_adapter import LoopAwarePostgresPool
from cairn.projections.store.loop_greenlets import LoopSafeLock, await_only, blocking, on_loop, pause, run_on_loop
from cairn.projections.store.write_first import WriteFirstConnection
from cairn.runtime import event_log_env
from cairn.settings import Settings

on_postgres = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

acting = contextvars.ContextVar("acting", default="nobody")


class Ticker:
    """Counts the loop's turns while it runs: a loop held up by a blocking wait counts none."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def test_the_result_the_error_and_the_callers_context() -> None:
    def work(n: int) -> tuple[int, str, bool]:
        seen = acting.get()
        acting.set("changed inside")
        return n * 2, seen, on_loop()

    def failing() -> None:
        raise KeyError("inside")

    async def main() -> None:
        acting.set("caller")
        assert await run_on_loop(work, 21) == (42, "caller", True)
        assert acting.get() == "caller"  # a copy: what the greenlet set stays there
        with pytest.raises(KeyError, match="inside"):
            await run_on_loop(failing)
        assert not on_loop()

    asyncio.run(main())
    assert not on_loop()
    sleeping = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="outside run_on_loop"):
        await_only(sleeping)
    sleeping.close()


def test_while_one_waits_the_loop_serves_others() -> None:
    def sleeper() -> float:
        started = time.monotonic()
        await_only(asyncio.sleep(0.1))
        pause(0.1)
        return time.monotonic() - started

    async def main() -> None:
        async with Ticker() as ticker:
            started = time.monotonic()
            slept = await asyncio.gather(*(run_on_loop(sleeper) for _ in range(5)))
            elapsed = time.monotonic() - started
        assert all(s >= 0.19 for s in slept)
        assert elapsed < 0.6  # five waits of 0.2 s side by side, not one after another (1 s)
        assert ticker.ticks >= 10

    asyncio.run(main())


def test_pause_off_the_loop_sleeps() -> None:
    started = time.monotonic()
    pause(0.05)
    assert time.monotonic() - started >= 0.05


def test_a_blocking_call_waits_on_a_thread_of_its_own() -> None:
    release = threading.Event()

    def wait_for_release() -> str:
        assert release.wait(5)
        return threading.current_thread().name

    def work() -> str:
        return blocking(wait_for_release)

    async def main() -> None:
        async with Ticker() as ticker:
            work_done = asyncio.ensure_future(run_on_loop(work))
            await asyncio.sleep(0.1)
            assert not work_done.done()
            ticks = ticker.ticks
            release.set()
            thread = await work_done
        assert thread.startswith("cairn-loop-wait")
        assert ticks >= 5  # the loop went on while the thread waited

    asyncio.run(main())
    assert blocking(threading.current_thread) is threading.current_thread()  # off the loop: right here


def test_what_a_cancelled_wait_gets_in_the_end_is_given_back() -> None:
    release = threading.Event()
    undone: list[str] = []
    after: list[str] = []

    def take() -> str:
        assert release.wait(5)
        return "a connection"

    def work() -> None:
        try:
            blocking(take, undo=undone.append)
        finally:
            after.append("left")

    async def main() -> None:
        work_done = asyncio.ensure_future(run_on_loop(work))
        await asyncio.sleep(0.05)
        work_done.cancel()
        with pytest.raises(asyncio.CancelledError):
            await work_done
        assert after == ["left"] and undone == []  # the thread still waits
        release.set()
        for _ in range(100):
            if undone:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert undone == ["a connection"]


def test_a_lock_held_across_a_wait_by_one_greenlet_makes_another_wait_not_the_loop() -> None:
    lock = LoopSafeLock()
    order: list[str] = []

    def holder() -> None:
        with lock:
            order.append("holder in")
            await_only(asyncio.sleep(0.1))  # another greenlet runs meanwhile, and wants the lock
            order.append("holder out")

    def waiter() -> None:
        with lock:
            order.append("waiter in")

    async def main() -> None:
        async with Ticker() as ticker:
            first = asyncio.ensure_future(run_on_loop(holder))
            await asyncio.sleep(0.02)
            await asyncio.wait_for(asyncio.gather(first, run_on_loop(waiter)), 5)
        assert ticker.ticks >= 5

    asyncio.run(main())
    assert order == ["holder in", "holder out", "waiter in"]
    assert not lock.locked()


def test_a_lock_held_by_a_thread_makes_a_greenlet_wait_not_the_loop() -> None:
    lock = LoopSafeLock()
    taken, release = threading.Event(), threading.Event()
    order: list[str] = []

    def thread_holder() -> None:
        with lock:
            taken.set()
            assert release.wait(5)
            order.append("thread out")

    def waiter() -> None:
        with lock:
            order.append("greenlet in")

    async def main() -> None:
        async with Ticker() as ticker:
            waiting = asyncio.ensure_future(run_on_loop(waiter))
            await asyncio.sleep(0.1)
            ticks = ticker.ticks
            release.set()
            await asyncio.wait_for(waiting, 5)
        assert ticks >= 5

    holder = threading.Thread(target=thread_holder)
    holder.start()
    assert taken.wait(5)
    asyncio.run(main())
    holder.join()
    assert order == ["thread out", "greenlet in"]


@on_postgres
def test_postgresql_waits_on_the_loop_side_by_side(database_url: str) -> None:
    connections = [WriteFirstConnection.connect(database_url, row_factory=dict_row, autocommit=True) for _ in range(3)]

    def query(conn: psycopg.Connection) -> list[Any]:
        conn.execute("SELECT pg_sleep(0.3)")
        with conn.pipeline():  # a flight, its answers fetched on the loop too
            cursors = [conn.execute("SELECT %s::int * 2 AS twice", (n,)) for n in range(5)]
            return [c.fetchone()["twice"] for c in cursors]

    async def main() -> float:
        async with Ticker() as ticker:
            started = time.monotonic()
            answers = await asyncio.gather(*(run_on_loop(query, conn) for conn in connections))
            elapsed = time.monotonic() - started
        assert answers == [[0, 2, 4, 6, 8]] * 3
        assert ticker.ticks >= 20  # 0.3 s of waiting: the loop turned all along
        return elapsed

    try:
        elapsed = asyncio.run(main())
    finally:
        for conn in connections:
            conn.close()
    assert elapsed < 0.8  # three sleeps of 0.3 s side by side, not one after another (0.9 s)


@on_postgres
def test_a_cancelled_postgresql_wait_closes_its_connection(database_url: str) -> None:
    conn = WriteFirstConnection.connect(database_url, row_factory=dict_row, autocommit=True)

    async def main() -> None:
        work = asyncio.ensure_future(run_on_loop(conn.execute, "SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        work.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(work, 5)

    try:
        started = time.monotonic()
        asyncio.run(main())
        assert time.monotonic() - started < 3
        assert conn.closed  # its exchange with the server was cut short: never used again
    finally:
        conn.close()


@on_postgres
def test_the_stores_pool_keeps_the_loop_going_while_none_is_free(database_url: str, runtime: Any) -> None:
    assert type(runtime.log.recorder.datastore.pool) is LoopAwarePostgresPool
    pool = LoopAwarePostgresPool(
        database_url, min_size=1, max_size=1, open=True, connection_class=WriteFirstConnection,
        kwargs={"autocommit": True},
    )
    order: list[str] = []

    def holder() -> None:
        with pool.connection() as conn:
            order.append("holder in")
            conn.execute("SELECT pg_sleep(0.2)")
            order.append("holder out")

    def taker() -> int:
        with pool.connection() as conn:
            order.append("taker in")
            return conn.execute("SELECT 7").fetchone()[0]

    async def main() -> None:
        async with Ticker() as ticker:
            first = asyncio.ensure_future(run_on_loop(holder))
            await asyncio.sleep(0.05)
            results = await asyncio.wait_for(asyncio.gather(first, run_on_loop(taker)), 10)
        assert results[1] == 7
        assert ticker.ticks >= 10  # the taker waited for the one connection on a thread, not on the loop

    try:
        asyncio.run(main())
    finally:
        pool.close()
    assert order == ["holder in", "holder out", "taker in"]


def test_the_threads_for_waits_are_as_many_as_the_pool_has_connections() -> None:
    env = event_log_env(Settings(database_url="postgresql://u@h:5432/d"))
    assert loop_greenlets.WAIT_THREADS >= int(env["POSTGRES_POOL_SIZE"]) + int(env["POSTGRES_MAX_OVERFLOW"])
