"""The event stream's routing-key patterns: AMQP topic matching, iterative and linear in the key."""

from __future__ import annotations

import functools
import itertools
import random
import time

import pytest

from cairn.domain.pulse_routing import RoutingKeyPattern


def reference(pattern: str, key: str) -> bool:
    """The definition, word by word: `*` is one word, `#` zero or more."""
    p, k = pattern.split("."), key.split(".")

    @functools.cache
    def at(i: int, j: int) -> bool:
        if i == len(p):
            return j == len(k)
        if p[i] == "#":
            return at(i + 1, j) or (j < len(k) and at(i, j + 1))
        return j < len(k) and p[i] in ("*", k[j]) and at(i + 1, j + 1)

    return at(0, 0)


@pytest.mark.parametrize(
    "pattern, key, expected",
    [
        ("#", "primary.abc.0", True),
        ("#", "", True),
        ("*", "primary", True),
        ("*", "primary.abc", False),
        ("primary.*.0.#", "primary.abc.0", True),
        ("primary.*.0.#", "primary.abc.1.w", False),
        ("route.index.#", "route.index.cairn.tests.latest", True),
        ("route.index.#", "route.notify.x", False),
        ("#.latest", "route.index.cairn.latest", True),
        ("#.latest", "route.index.cairn.latest.x", False),
        ("a.#.b.#.c", "a.b.c", True),
        ("a.#.b.#.c", "a.x.y.b.z.c", True),
        ("a.#.b.#.c", "a.x.c.b", False),
        ("#.*.#", "", True),
        ("*.*", "a", False),
        ("", "", True),
        ("", "a", False),
    ],
)
def test_topic_matching(pattern, key, expected):
    assert RoutingKeyPattern(pattern).match(key) is expected
    assert reference(pattern, key) is expected


def test_agrees_with_the_definition_on_every_small_case():
    words = ["a", "b", "*", "#"]
    keys = [".".join(k) for n in range(5) for k in itertools.product("ab", repeat=n)] + [""]
    patterns = [".".join(p) for n in range(1, 5) for p in itertools.product(words, repeat=n)]
    for pattern in patterns:
        matcher = RoutingKeyPattern(pattern)
        for key in keys:
            assert matcher.match(key) is reference(pattern, key), (pattern, key)


def test_agrees_with_the_definition_on_random_long_cases():
    chance = random.Random(13)
    for _ in range(300):
        pattern = ".".join(chance.choice(["a", "b", "*", "#", "#"]) for _ in range(chance.randint(1, 30)))
        key = ".".join(chance.choice("ab") for _ in range(chance.randint(1, 40)))
        assert RoutingKeyPattern(pattern).match(key) is reference(pattern, key), (pattern, key)


def test_a_pattern_of_490_hashes_neither_recurses_nor_stalls():
    # Issue: about 490 `#` words (under 1 KB) raised RecursionError in the stream's reader.
    pattern = RoutingKeyPattern(".".join(["#"] * 490))
    started = time.monotonic()
    assert pattern.match("primary.fN1SbArXTPSVFNUvaOlinQ.0.tests.w1.prov.worker.-.group._")
    assert pattern.match(".".join(["w"] * 5000))
    assert not RoutingKeyPattern(".".join(["#"] * 490) + ".z").match(".".join(["w"] * 5000))
    assert time.monotonic() - started < 0.5


def test_a_long_mixed_pattern_is_linear_in_the_key():
    # `#` and `*` and words mixed: a backtracking matcher explores a quadratic
    # (or, without memoising, exponential) number of ways on a key that fails late.
    pattern = RoutingKeyPattern(".".join(["#", "*", "a"] * 160) + ".z")
    key = ".".join(["a"] * 3000)
    started = time.monotonic()
    assert not pattern.match(key)
    assert pattern.match(key + ".z")
    assert time.monotonic() - started < 1.0
