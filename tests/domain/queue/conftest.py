"""Every story acts as someone: events record who caused them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cairn.domain.aggregate import acting_as


@pytest.fixture(autouse=True)
def scheduler() -> Iterator[None]:
    with acting_as("tests/scheduler"):
        yield
