"""Helpers shared by JSON-e renderers: ids fixed by what they are for, and JavaScript's view of numbers."""

from __future__ import annotations

import re

from cairn.domain.templating import derived_task_id, integral_floats_as_ints

NICE_SLUG = re.compile(r"[A-Za-f][A-Za-z0-9_-]{7}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]")


def test_derived_ids_are_nice_slug_ids_fixed_by_their_parts():
    ids = {derived_task_id("seed", "as_slugid", str(i)) for i in range(200)}
    assert len(ids) == 200 and all(NICE_SLUG.fullmatch(i) for i in ids)
    assert derived_task_id("a", "b") == derived_task_id("a", "b") != derived_task_id("b", "a")


def test_integral_floats_become_ints_at_any_depth_and_nothing_else_changes():
    value = {"a": 2.0, "b": [1.5, -3.0, {"c": 0.0}], "d": True, "e": "4.0", "f": None, "g": 10**20 * 1.0}
    result = integral_floats_as_ints(value)
    assert result == {"a": 2, "b": [1.5, -3, {"c": 0}], "d": True, "e": "4.0", "f": None, "g": 10**20}
    assert type(result["a"]) is int and type(result["b"][0]) is float and result["d"] is True
    assert value["a"] == 2.0 and type(value["a"]) is float  # the input is left as it was
