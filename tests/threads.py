"""Running calls from threads released together, for tests of concurrent commands."""

from __future__ import annotations

import threading
from collections.abc import Callable


def at_once(*calls: Callable[[], None]) -> list[BaseException]:
    """Run ``calls`` in threads released together; the exceptions they raised."""
    gate = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        gate.wait()
        try:
            call()
        except BaseException as e:  # noqa: BLE001  (returned to the test, which asserts on it)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors
