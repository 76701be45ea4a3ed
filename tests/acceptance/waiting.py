"""Waiting for what a live server does in the background: poll until a check holds."""

from __future__ import annotations

import time
from typing import Any


def wait_for(check: Any, timeout: float = 30, what: str = "condition", interval: float = 0.05) -> Any:
    """The first true value ``check()`` returns; fails the test after ``timeout`` seconds."""
    give_up = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
