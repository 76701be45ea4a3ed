"""Taskcluster's reference vectors, one test id per case.

A test marked `@pytest.mark.vectors("scope_sets.json", "scopeCompare")` takes
a `case` argument and runs once for each case of that section. The vectors
live in `$CAIRN_REFERENCE_DIR/vectors` (default `<repo>/../shared/reference`);
when they are missing the tests are skipped, or fail if `$CI` is set.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import reference_path

_MISSING = object()


def reference_dir() -> Path:
    return reference_path()


@cache
def load_vectors(filename: str) -> dict | None:
    path = reference_dir() / "vectors" / filename
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _case_id(index: int, case: object) -> str:
    name = case.get("name", "") if isinstance(case, dict) else ""
    slug = re.sub(r"[^A-Za-z0-9*:<>._-]+", "_", name).strip("_")[:60]
    return f"{index}-{slug}" if slug else str(index)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "vectors(filename, section): parametrize `case` with reference vectors"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("vectors")
    if marker is None:
        return
    filename, section = marker.args
    vectors = load_vectors(filename)
    if vectors is None:
        params = [pytest.param(_MISSING, id="reference-vectors-missing")]
    else:
        params = [pytest.param(c, id=_case_id(i, c)) for i, c in enumerate(vectors[section])]
    metafunc.parametrize("case", params, indirect=True)


def _missing_reference() -> None:
    message = f"reference vectors not found under {reference_dir()}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def case(request: pytest.FixtureRequest) -> dict:
    if request.param is _MISSING:
        _missing_reference()
    return request.param


@pytest.fixture
def reference() -> Path:
    """The reference directory (skips, or fails under CI, if it is missing)."""
    if not (reference_dir() / "vectors").is_dir():
        _missing_reference()
    return reference_dir()
