"""Python's garbage collector in a serving process.

A request allocates and frees thousands of small containers; nearly all
of them are freed by reference counting, and the few cycles it makes die
young. With the interpreter's defaults the youngest generation is
collected every 700 net allocations (once per 20 createTask calls made
one at a time, more often under concurrent load), the older generations
every so many of those, and a full collection walks every object: the
modules, schemas and routes loaded at start, which never become garbage.
Under the async load that was about 5% of the server's CPU (perf's
samples in the collector; ``bench/README.md``).

So a serving process, once loaded, moves what it holds into the
collector's permanent generation (``gc.freeze``), where collections no
longer visit it, and collects the youngest generation less often. Cycles
are still collected: later, and never among what was frozen.
"""

from __future__ import annotations

import gc

#: Net allocations of tracked objects between collections of the youngest generation (the interpreter's default: 700).
YOUNG_THRESHOLD = 10_000


def settle_for_serving() -> None:
    """Freeze what the process holds now and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
