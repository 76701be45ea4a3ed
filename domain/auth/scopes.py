"""Taskcluster scopes and scope expressions, as pure functions.

A scope is a printable-ASCII string. A given scope satisfies a required scope
when they are equal, or when the given scope ends in `*` and the required
scope starts with everything before that `*`. A scope expression is a scope,
`{"AllOf": [expr, ...]}` or `{"AnyOf": [expr, ...]}`.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

Expression: TypeAlias = str | dict[str, list[Any]]

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_OPERATORS = ("AllOf", "AnyOf")


def valid_scope(scope: object) -> bool:
    return isinstance(scope, str) and _PRINTABLE_ASCII.fullmatch(scope) is not None


def valid_expression(expr: object) -> bool:
    if isinstance(expr, str):
        return valid_scope(expr)
    if not isinstance(expr, dict) or len(expr) != 1:
        return False
    ((operator, operands),) = expr.items()
    return (
        operator in _OPERATORS
        and isinstance(operands, list)
        and all(valid_expression(e) for e in operands)
    )


def pattern_match(given: str, required: str) -> bool:
    """True if the single scope `given` satisfies the single scope `required`."""
    return given == required or (given.endswith("*") and required.startswith(given[:-1]))


# -- ordering and normal form ------------------------------------------------


def scope_sort_key(scope: str) -> tuple[str, int]:
    """Key giving scopeCompare order: a trailing `*` sorts before end-of-string."""
    if scope.endswith("*"):
        return scope[:-1], 0
    return scope, 1


def scope_compare(a: str, b: str) -> int:
    key_a, key_b = scope_sort_key(a), scope_sort_key(b)
    return (key_a > key_b) - (key_a < key_b)


def sort_scopes(scopes: Iterable[str]) -> list[str]:
    return sorted(scopes, key=scope_sort_key)


def normalize_scope_set(sorted_scopes: Sequence[str]) -> list[str]:
    """Drop duplicates and scopes covered by a preceding star scope.

    The input must be sorted with `scope_compare`; the output then is too.
    """
    result: list[str] = []
    star_prefix: str | None = None
    for scope in sorted_scopes:
        if star_prefix is not None and scope.startswith(star_prefix):
            continue
        if result and result[-1] == scope:
            continue
        result.append(scope)
        star_prefix = scope[:-1] if scope.endswith("*") else None
    return result


def normalize_scopes(scopes: Iterable[str]) -> list[str]:
    """Any scopes in, the equivalent normalized scopeCompare-sorted list out."""
    distinct = set(scopes)
    if len(distinct) < 2:
        return list(distinct)
    return normalize_scope_set(sort_scopes(distinct))


def merge_scope_sets(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """Merge two scopeCompare-sorted scope sets into one normalized set."""
    # Timsort merges the two sorted runs in linear time.
    return normalize_scope_set(sorted([*a, *b], key=scope_sort_key))


def scope_union(a: Iterable[str], b: Iterable[str]) -> list[str]:
    return merge_scope_sets(normalize_scopes(a), normalize_scopes(b))


def scope_intersection(a: Iterable[str], b: Iterable[str]) -> list[str]:
    """Scopes of either set that the other set satisfies, scopeCompare-sorted.

    Like Taskcluster, the result keeps every such scope, so it need not be
    normalized (`["a*"]` and `["a*", "ab"]` intersect to `["a*", "ab"]`).
    """
    a, b = set(a), set(b)
    set_a, set_b = ScopeSet(a), ScopeSet(b)
    both = {s for s in a if set_b.satisfies_scope(s)}
    both.update(s for s in b if set_a.satisfies_scope(s))
    return sort_scopes(both)


class ScopeSet:
    """An immutable set of given scopes, indexed to answer `satisfies` in O(log n)."""

    __slots__ = ("_given", "_star_stems")

    def __init__(self, scopes: Iterable[str] = ()) -> None:
        given = scopes if isinstance(scopes, list | tuple) else list(scopes)
        self._given = frozenset(given)
        stems = sorted([s[:-1] for s in given if s[-1:] == "*"])
        # Keep only stems with no other stem as prefix (this drops duplicates
        # too): in plain sorted order every string starting with P follows P.
        self._star_stems: list[str] = []
        for stem in stems:
            if not self._star_stems or not stem.startswith(self._star_stems[-1]):
                self._star_stems.append(stem)

    @property
    def scopes(self) -> list[str]:
        """The normalized, scopeCompare-sorted scopes."""
        return normalize_scopes(self._given)

    def __repr__(self) -> str:
        return f"ScopeSet({self.scopes!r})"

    def satisfies_scope(self, required: str) -> bool:
        if required in self._given:
            return True
        # The stems are sorted and none is a prefix of another, so if any stem
        # is a prefix of `required` it is the greatest stem not after it: any
        # stem between that prefix and `required` would start with the prefix.
        index = bisect_right(self._star_stems, required)
        return index > 0 and required.startswith(self._star_stems[index - 1])

    def satisfies(self, expr: Expression) -> bool:
        if isinstance(expr, str):
            return self.satisfies_scope(expr)
        operator, operands = _operator(expr)
        if operator == "AllOf":
            return all(self.satisfies(e) for e in operands)
        return any(self.satisfies(e) for e in operands)


def _as_scope_set(scopeset: ScopeSet | Iterable[str]) -> ScopeSet:
    return scopeset if isinstance(scopeset, ScopeSet) else ScopeSet(scopeset)


def _operator(expr: Any) -> tuple[str, list[Any]]:
    if isinstance(expr, dict) and len(expr) == 1:
        ((operator, operands),) = expr.items()
        if operator in _OPERATORS and isinstance(operands, list):
            return operator, operands
    raise ValueError(f"not a valid scope expression: {expr!r}")


# -- expressions ---------------------------------------------------------------


def satisfies(scopeset: ScopeSet | Iterable[str], expr: Expression) -> bool:
    """Does the scope set satisfy the expression? `{"AnyOf": []}` never is."""
    return _as_scope_set(scopeset).satisfies(expr)


def scopes_satisfying(scopeset: ScopeSet | Iterable[str], expr: Expression) -> list[str] | None:
    """The required scopes of `expr` that the set satisfies, or None if it fails.

    Every satisfied branch of an AnyOf contributes, not just the first.
    """
    given = _as_scope_set(scopeset)
    used: list[str] = []

    def collect(e: Expression) -> bool:
        if isinstance(e, str):
            if given.satisfies_scope(e):
                used.append(e)
                return True
            return False
        operator, operands = _operator(e)
        mark = len(used)
        if operator == "AllOf":
            ok = all(collect(sub) for sub in operands)
        else:
            ok = any([collect(sub) for sub in operands])
        if not ok:
            del used[mark:]
        return ok

    return normalize_scopes(used) if collect(expr) else None


def remove_given_scopes(scopeset: ScopeSet | Iterable[str], expr: Expression) -> Expression | None:
    """The part of `expr` the set does not satisfy (None if it satisfies all)."""
    given = _as_scope_set(scopeset)

    def missing(e: Expression) -> Expression | None:
        if isinstance(e, str):
            return None if given.satisfies_scope(e) else e
        operator, operands = _operator(e)
        rest = [missing(sub) for sub in operands]
        if operator == "AllOf":
            rest = [r for r in rest if r is not None]
            if not rest:
                return None
        elif None in rest:
            return None
        return rest[0] if len(rest) == 1 else {operator: rest}

    return missing(expr)


def simplify_expression(expr: Expression) -> Expression:
    """Flatten nested AllOf/AnyOf, drop duplicates, sort scopes; an AllOf's
    scopes are also normalized. Equivalent to `expr` for every scope set."""
    if not valid_expression(expr):
        raise ValueError("cannot simplify an invalid scope expression")
    return _simplify(expr)


def _simplify(expr: Expression) -> Expression:
    if isinstance(expr, str):
        return expr
    operator, operands = _operator(expr)
    if operator == "AnyOf":
        # As upstream, AnyOf dedupes its operands before simplifying them. An
        # inner AnyOf that collapses to one member is kept (upstream throws).
        scopes, any_ofs, all_ofs = _divide(operands)
        flattened = [m for e in any_ofs for m in _members(_simplify(e), "AnyOf")]
        members = [*scopes, *flattened, *map(_simplify, all_ofs)]
        rerun = bool(any_ofs)
    else:
        scopes, any_ofs, all_ofs = _divide([_simplify(e) for e in operands])
        flattened = [m for e in all_ofs for m in e["AllOf"]]
        members = [*normalize_scope_set(scopes), *any_ofs, *flattened]
        rerun = bool(all_ofs)
    if len(members) == 1:
        return members[0]
    return _simplify({operator: members}) if rerun else {operator: members}


def _members(expr: Expression, operator: str) -> list[Any]:
    return expr[operator] if isinstance(expr, dict) and operator in expr else [expr]


def _divide(exprs: Iterable[Expression]) -> tuple[list[str], list[dict], list[dict]]:
    """Split into distinct scopes (sorted), AnyOfs and AllOfs (first-seen order)."""
    scopes: set[str] = set()
    any_ofs: dict[str, dict] = {}
    all_ofs: dict[str, dict] = {}
    for e in exprs:
        if isinstance(e, str):
            scopes.add(e)
        else:
            group = any_ofs if "AnyOf" in e else all_ofs
            group.setdefault(json.dumps(e, sort_keys=True), e)
    return sort_scopes(scopes), list(any_ofs.values()), list(all_ofs.values())


def format_expression(expr: Expression | None) -> str:
    """Render an expression as Taskcluster's InsufficientScopes message does."""
    if isinstance(expr, str):
        return expr
    return json.dumps(expr, indent=2)
