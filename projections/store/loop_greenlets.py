"""Blocking code run on the event loop, its waits for the database made the loop's.

Why
===

A command is written as plain blocking code: the service decides, the
store reads and writes through psycopg's blocking connections. On a
request thread each of its round trips lets go of the GIL and takes it
back when the answer comes, which in a busy server means waiting for
whichever thread (the event loop, another request, a follower) got it
meanwhile: a futex call and a pair of context switches, several per
command. Run on the event loop instead, those hand-overs go, but a
blocking wait for the database would stop every other request for the
length of a round trip.

What
====

:func:`run_on_loop` runs the blocking function in a greenlet on the loop's
own thread. Where the function would wait for a socket (psycopg's
connections made by the store are :class:`~cairn.projections.store.write_first.WriteFirstConnection`,
whose ``wait`` asks :func:`on_loop`), the wait is handed to the loop as an
awaitable (:func:`await_only`): the greenlet switches back to the coroutine
that started it, which awaits it like any other, and switches back in with
the answer. Meanwhile the loop serves other requests, each of which may be
inside a greenlet of its own. The code in between runs unchanged: the
greenlet carries a copy of the caller's context variables, as a request
thread does.

What such code must not do, on the loop: wait for a lock that another
greenlet may hold across a wait (it would stop the loop's thread with the
holder unable to resume; :class:`LoopSafeLock` is the lock for that case),
and wait for something only the loop can finish. Waits that are not the
store's sockets (a pool with no connection free) are handed to a thread
(:func:`blocking`).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import greenlet

T = TypeVar("T")

#: Threads for the waits :func:`blocking` hands over: as many as the store's
#: pool has connections at most, so that a wait for one never waits for a thread.
WAIT_THREADS = 32
_waiters = ThreadPoolExecutor(WAIT_THREADS, thread_name_prefix="cairn-loop-wait")


# What a greenlet of run_on_loop hands its parent: an awaitable to await, or its job's end.
_AWAIT, _DONE, _FAILED = "await", "done", "failed"

#: Idle greenlets kept per thread for the next jobs: making one costs about
#: 10 µs, switching into one and back under 1 µs.
IDLE_KEPT = 64


class _LoopGreenlet(greenlet.greenlet):
    """A greenlet that runs :func:`run_on_loop`'s jobs, one after another; its parent is the loop's thread."""

    def __init__(self) -> None:
        super().__init__(self._serve, parent=greenlet.getcurrent())

    def _serve(self, job: tuple[Callable[..., Any], tuple[Any, ...], contextvars.Context]) -> None:
        while True:
            fn, args, context = job
            try:
                ended = (_DONE, context.run(fn, *args))
            except greenlet.GreenletExit:
                raise  # the greenlet itself is going (collected mid-job): not the job's error
            except BaseException as error:  # noqa: BLE001 - handed to the awaiting coroutine
                ended = (_FAILED, error)
            del fn, args, context, job
            job = self.parent.switch(ended)


_idle = threading.local()


def on_loop() -> bool:
    """Whether the caller runs in a greenlet of :func:`run_on_loop`, so must not block."""
    return type(greenlet.getcurrent()) is _LoopGreenlet


def await_only(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, awaited by the loop while this greenlet waits (only inside :func:`run_on_loop`)."""
    current = greenlet.getcurrent()
    if type(current) is not _LoopGreenlet:
        raise RuntimeError("await_only called outside run_on_loop")
    return current.parent.switch((_AWAIT, awaitable))


def blocking(fn: Callable[..., T], *args: Any, undo: Callable[[T], object] | None = None) -> T:
    """``fn(*args)``: here, or, inside :func:`run_on_loop`, on a thread of its own while the loop goes on.

    ``undo`` is called with the result should the greenlet give up waiting
    (cancelled) after ``fn`` began: a connection taken, say, is given back.
    """
    if not on_loop():
        return fn(*args)
    started = _waiters.submit(fn, *args)
    try:
        return await_only(asyncio.wrap_future(started))
    except BaseException:
        if undo is not None:
            started.add_done_callback(lambda done: done.cancelled() or done.exception() or undo(done.result()))
        raise


def pause(seconds: float) -> None:
    """Sleep: on the loop (inside :func:`run_on_loop`) while it serves others, else as ``time.sleep``."""
    if on_loop():
        await_only(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


async def run_on_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on this thread, in a copy of the caller's context; its waits are awaited here."""
    idle: list[_LoopGreenlet] = _idle.__dict__.setdefault("greenlets", [])
    child = idle.pop() if idle else _LoopGreenlet()
    kind, value = child.switch((fn, args, contextvars.copy_context()))
    while kind is _AWAIT:
        try:
            answer = await value
        except BaseException as error:  # noqa: BLE001 - the greenlet decides what it means, cancellation included
            kind, value = child.throw(error)
        else:
            kind, value = child.switch(answer)
    if len(idle) < IDLE_KEPT:
        idle.append(child)
    if kind is _FAILED:
        raise value
    return value


class LoopSafeLock:
    """A lock that may be held across a wait for the database, by a thread or by a greenlet on the loop.

    A greenlet of :func:`run_on_loop` that finds it taken must not wait in
    the lock (the holder may be another greenlet, which needs the loop to go
    on): it tries again after each of a few short sleeps on the loop. The
    locks this is for guard a refresh of a cache, taken rarely and held for
    a statement or two. A thread waits for it as for any lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        if self._lock.acquire(blocking=False):
            return
        if not on_loop():
            self._lock.acquire()
            return
        delay = 0.0005
        while not self._lock.acquire(blocking=False):
            pause(delay)
            delay = min(delay * 2, 0.01)

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()
