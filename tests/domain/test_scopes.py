import itertools
from functools import reduce

import pytest

from cairn.domain.auth.scopes import (
    ScopeSet,
    format_expression,
    merge_scope_sets,
    normalize_scope_set,
    normalize_scopes,
    pattern_match,
    remove_given_scopes,
    satisfies,
    scope_compare,
    scope_intersection,
    scope_union,
    scopes_satisfying,
    simplify_expression,
    sort_scopes,
    valid_expression,
    valid_scope,
)

SETS = "scope_sets.json"
EXPRESSIONS = "scope_expressions.json"


def sign(n: int) -> int:
    return (n > 0) - (n < 0)


@pytest.mark.vectors(SETS, "validScope")
def test_valid_scope(case):
    assert valid_scope(case["scope"]) is case["valid"]


@pytest.mark.vectors(SETS, "scopeCompare")
def test_scope_compare(case):
    assert sign(scope_compare(case["a"], case["b"])) == case["expected"]


@pytest.mark.vectors(SETS, "sortOrder")
def test_every_permutation_sorts_the_same(case):
    expected = case["expected"]
    permutations = itertools.islice(itertools.permutations(expected), 2000)
    for shuffled in [list(reversed(expected)), *permutations]:
        assert sort_scopes(shuffled) == expected


@pytest.mark.vectors(SETS, "normalizeScopeSet")
def test_normalize_scope_set(case):
    assert normalize_scope_set(case["input_sorted"]) == case["expected"]


@pytest.mark.vectors(SETS, "mergeScopeSets")
def test_merge_scope_sets(case):
    assert merge_scope_sets(case["a_sorted"], case["b_sorted"]) == case["expected"]
    assert merge_scope_sets(case["b_sorted"], case["a_sorted"]) == case["expected"]


@pytest.mark.vectors(SETS, "mergeMany")
def test_merge_many(case):
    normalized = [normalize_scopes(s) for s in case["sets"]]
    assert reduce(merge_scope_sets, normalized, []) == case["expected"]
    assert normalize_scopes(itertools.chain(*case["sets"])) == case["expected"]


@pytest.mark.vectors(SETS, "normalizeScopes_auth")
def test_normalize_scopes(case):
    result = normalize_scopes(case["input"])
    assert sorted(result) == sorted(case["expected_any_order"])
    assert result == sort_scopes(result)


@pytest.mark.vectors(SETS, "scopeUnion")
def test_scope_union(case):
    assert scope_union(case["a"], case["b"]) == case["expected"]


@pytest.mark.vectors(SETS, "scopeIntersection")
def test_scope_intersection(case):
    assert sorted(scope_intersection(case["a"], case["b"])) == sorted(case["expected"])
    assert sorted(scope_intersection(case["b"], case["a"])) == sorted(case["expected"])


@pytest.mark.vectors("scope_satisfaction.json", "cases")
def test_satisfies(case):
    # One case is a Go client-side quirk; servers follow the JS library.
    expected = case.get("js_satisfiesExpression", case["expected"])
    assert satisfies(case["scopeset"], case["required"]) is expected
    assert satisfies(ScopeSet(case["scopeset"]), case["required"]) is expected


@pytest.mark.vectors(EXPRESSIONS, "validExpression")
def test_valid_expression(case):
    assert valid_expression(case["expr"]) is case["valid"]


@pytest.mark.vectors(EXPRESSIONS, "scopesSatisfying")
def test_scopes_satisfying(case):
    assert scopes_satisfying(case["scopeset"], case["expr"]) == case["expected"]


@pytest.mark.vectors(EXPRESSIONS, "removeGivenScopes")
def test_remove_given_scopes(case):
    assert remove_given_scopes(case["scopeset"], case["expr"]) == case["expected"]


@pytest.mark.vectors(EXPRESSIONS, "simplifyScopeExpression")
def test_simplify_expression(case):
    assert simplify_expression(case["input"]) == case["expected"]


# -- edge cases beyond the vectors --------------------------------------------


@pytest.mark.parametrize(
    "given, required, expected",
    [
        (["*"], "", True),
        ([""], "", True),
        ([""], "a", False),
        (["a**"], "a*", True),
        (["a**"], "a", False),
        (["a**"], "a**", True),
        (["a*"], "a**", True),
        (["assume:repo:x/*"], "assume:repo:x/", True),
        (["a*", "ab", "b"], "abc", True),
        (["aa", "ab*", "ac"], "abz", True),
        (["aa", "ab*", "ac"], "a", False),
        (["a*", "ab*", "abc"], "abd", True),
        (["a(*", "a*b", "a-*"], "a*bc", False),
        (["a(*", "a*b", "a-*"], "a-x", True),
        (["ab\x00*"], "ab\x00\x01", True),
    ],
)
def test_star_rule_edges(given, required, expected):
    assert satisfies(given, required) is expected
    assert ScopeSet(given).satisfies_scope(required) is expected


def test_satisfies_agrees_with_a_linear_scan_on_a_large_set():
    given = [f"queue:create-task:proj-{i}/*" for i in range(0, 3000, 3)]
    given += [f"secrets:get:proj-{i}" for i in range(3000)] + ["index:insert-task:*"]
    scope_set = ScopeSet(given)
    probes = [f"queue:create-task:proj-{i}/w" for i in range(60)]
    probes += [f"secrets:get:proj-{i}{s}" for i in range(0, 3000, 97) for s in ("", "x", "*")]
    probes += ["index:insert-task:a.b", "index:insert-task", "queue:create-task:proj-1*"]
    for required in probes:
        linear = any(pattern_match(g, required) for g in given)
        assert scope_set.satisfies_scope(required) is linear, required


def test_scope_set_normalizes_its_input():
    assert ScopeSet(["b", "a*", "ab", "b"]).scopes == ["a*", "b"]


@pytest.mark.parametrize("expr", [{}, {"AnyOf": "a"}, {"AllOf": ["a"], "AnyOf": []}, 7, None])
def test_malformed_expressions_raise(expr):
    with pytest.raises(ValueError):
        satisfies(["*"], expr)
    with pytest.raises(ValueError):
        simplify_expression(expr)


def test_simplify_nested_any_of_that_collapses_to_one_scope():
    # Taskcluster's library throws here; Cairn keeps the scope.
    assert simplify_expression({"AnyOf": ["a", {"AnyOf": ["b"]}]}) == {"AnyOf": ["a", "b"]}


def test_remove_given_scopes_keeps_the_first_of_an_any_of_when_single():
    assert remove_given_scopes([], {"AnyOf": [{"AllOf": ["x", "y"]}]}) == {"AllOf": ["x", "y"]}


def test_format_expression_matches_taskclusters_error_text():
    assert format_expression("queue:get") == "queue:get"
    assert format_expression({"AllOf": ["a", {"AnyOf": []}]}) == (
        '{\n  "AllOf": [\n    "a",\n    {\n      "AnyOf": []\n    }\n  ]\n}'
    )
