"""PostgreSQL connections that send a pipeline's statements without first asking the kernel whether they may.

Why
===

psycopg drives each exchange with the server as a generator that says what
it waits for (to read, to write, or either) and a wait function that polls
the socket until it is ready. In pipeline mode, each statement a cursor
adds is sent by a loop that asks for "read or write" before every
statement it hands to libpq, and once more to flush; so a flight of a few
statements costs a poll for each. Each poll returns at once (the socket
can take a few hundred bytes), but psycopg releases the GIL around it, and
in a server whose request threads, event loop and log followers all want
the GIL, taking it back means waiting for whichever thread got it
meanwhile: a futex call and a context switch, every statement. Measured on
``make bench``'s async load, that was 32 polls per lifecycle.

What
====

:class:`WriteFirstConnection` answers "read or write?" with "write" without
polling, up to :data:`UNPOLLED_ANSWERS` times per wait. That is safe
because nothing waits on it:

- libpq's socket is non-blocking: a flush sends what the kernel takes now
  and keeps the rest in libpq's buffer (reading the server's input when a
  send would block, so that the server never stalls on its own output);
- answers are read where a statement's results are wanted, and there psycopg
  waits for "read" by polling, as before;
- a wait that keeps asking past the allowance (a large flight, or a socket
  whose buffer is full) polls for everything after, as psycopg would.

Nothing else changes: the same generators, the same order of statements and
results, the same errors, and any wait for "read" or for "write" alone polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import psycopg
from psycopg import waiting
from psycopg.rows import DictRow
from psycopg.waiting import Ready, Wait

from cairn.projections.store.loop_greenlets import await_only, on_loop

#: "Read or write?" questions answered "write" without a poll in one wait; after them, every question polls.
UNPOLLED_ANSWERS = 64

_EITHER = int(Wait.RW)


def write_first(gen: Generator[Any, Any, Any], allowance: int = UNPOLLED_ANSWERS) -> Generator[Any, Any, Any]:
    """``gen``, with up to ``allowance`` of its "read or write?" questions answered "write" at once."""
    try:
        asked = next(gen)
        while True:
            if asked == _EITHER and allowance > 0:
                allowance -= 1
                asked = gen.send(Ready.W)
                continue
            asked = gen.send((yield asked))
    except StopIteration as done:
        return done.value


class WriteFirstConnection(psycopg.Connection[DictRow]):
    """A psycopg connection whose waits answer "write" to "read or write?" without polling (see above).

    Used on the event loop (``loop_greenlets.run_on_loop``), its waits are
    the loop's: psycopg's own asynchronous wait, awaited by the loop while
    the command's greenlet waits.
    """

    # psycopg's own default interval: its asynchronous wait has none that would do (0 spins).
    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        answered = write_first(gen)
        # Named as the generator it drives, for whatever tells waits apart
        # by that name (the bench's count of round trips).
        answered.__name__ = getattr(gen, "__name__", answered.__name__)
        if not on_loop():
            return super().wait(answered, interval, timeout)
        try:
            return await_only(waiting.wait_async(answered, self.pgconn.socket, interval, timeout))
        except asyncio.CancelledError:
            # Cut off in the middle of an exchange with the server: the
            # connection's state is unknown, so it is never used again.
            self.close()
            raise
