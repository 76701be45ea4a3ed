"""Roles: the scopes a scope set grants through `assume:<roleId>`.

A role whose id ends in `*` is a prefix role: `assume:X` assumes role `P*`
when X starts with P, and `<..>` in the role's scopes becomes the rest of X.
A star input such as `assume:ab*` assumes every role whose id it could
satisfy, and every prefix role it could reach; `*`, `a*`, ... `assume*` and
`assume:*` assume them all.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from .scopes import merge_scope_sets, normalize_scopes

PARAMETER = "<..>"
_ASSUME = "assume:"
#: Expansions remembered whole (``RoleIndex.expand``): at most this many scopes in all, asked and
#: granted; none larger than a tenth of it (the closure cache still spares those most of the work).
RESULT_SCOPES_HELD = 100_000
_STARS_ASSUMING_ALL = frozenset(_ASSUME[:n] + "*" for n in range(len(_ASSUME)))


class DependencyCycleError(ValueError):
    """Roles may not contain dependency cycles."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        path = "' -> '".join(cycle)
        super().__init__(f"Roles may not contain dependency cycles, found: '{path}'")


class InvalidScopeError(ValueError):
    """A role's parameterized scope is ambiguous."""

    def __init__(self, message: str | None = None, *, scope: str | None = None) -> None:
        self.scope = scope
        super().__init__(message or self.__doc__)


def _assumes(scope: str) -> bool:
    return scope.startswith(_ASSUME) or scope in _STARS_ASSUMING_ALL


def assumed_role_pattern(scope: str) -> str | None:
    """The role-id pattern a scope assumes (`x`, `x*` or `*`), else None."""
    if scope.startswith(_ASSUME):
        return scope[len(_ASSUME):]
    return "*" if scope in _STARS_ASSUMING_ALL else None


class Role:
    """A role's scopes, with those of a prefix role split at their `<..>`."""

    __slots__ = ("role_id", "plain", "parameterized")

    def __init__(self, role_id: str, scopes: Iterable[str]) -> None:
        scopes = tuple(scopes)
        self.role_id = role_id
        self.plain = scopes
        self.parameterized: tuple[tuple[str, str], ...] = ()
        # `<..>` stays literal outside prefix roles
        if role_id.endswith("*") and any(PARAMETER in s for s in scopes):
            self.plain = tuple(s for s in scopes if PARAMETER not in s)
            self.parameterized = tuple(_split_at_parameter(s) for s in scopes if PARAMETER in s)

    def granted(self, parameter: str) -> tuple[str, ...]:
        """The role's scopes with `<..>` replaced; a parameter ending in `*`
        also replaces everything after `<..>`."""
        if not self.parameterized:
            return self.plain
        if parameter.endswith("*"):
            filled = (before + parameter for before, _ in self.parameterized)
        else:
            filled = (before + parameter + after for before, after in self.parameterized)
        return (*self.plain, *filled)


def _split_at_parameter(scope: str) -> tuple[str, str]:
    before, _, after = scope.partition(PARAMETER)
    return before, after


class _Prefixes:
    """A set of strings that answers "is any of them a prefix of s?"."""

    def __init__(self) -> None:
        self._members: set[str] = set()
        self._lengths: list[int] = []

    def add(self, prefix: str) -> None:
        if prefix not in self._members:
            self._members.add(prefix)
            if len(prefix) not in self._lengths:
                insort(self._lengths, len(prefix))

    def any_prefix_of(self, s: str) -> bool:
        for n in self._lengths:
            if n > len(s):
                return False
            if s[:n] in self._members:
                return True
        return False


class RoleIndex:
    """Immutable index of roles; `expand` resolves scopes through them.

    Built from `{roleId: scopes}`; a change to any role means a new index.
    Like Taskcluster's resolver it refuses role sets that `check_roles`
    rejects (a parameterized cycle could otherwise grow without end); pass
    `checked=True` for a set already known to pass.
    """

    def __init__(
        self,
        roles: Mapping[str, Iterable[str]],
        *,
        checked: bool = False,
        cache_size: int = 10_000,
    ) -> None:
        self._roles = {role_id: tuple(scopes) for role_id, scopes in roles.items()}
        self._exact = {r: s for r, s in self._roles.items() if not r.endswith("*")}
        self._prefix = {r[:-1]: s for r, s in self._roles.items() if r.endswith("*")}
        self._stems = sorted(self._exact.keys() | self._prefix.keys())
        self._prefix_lengths = sorted({len(stem) for stem in self._prefix})
        self._parsed: dict[str, Role] = {}
        self._cache_size = cache_size
        self._grants: dict[str, tuple[str, ...]] = {}
        self._expansions: OrderedDict[tuple[str, ...], list[str]] = OrderedDict()
        #: The scopes asked about → their expansion, and the scopes those hold in all.
        self._results: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._results_held = 0
        self._lock = threading.Lock()
        if not checked:
            _check(self._roles, self)

    def __len__(self) -> int:
        return len(self._roles)

    def role(self, role_id: str) -> Role:
        role = self._parsed.get(role_id)
        if role is None:
            role = self._parsed[role_id] = Role(role_id, self._roles[role_id])
        return role

    def matching(self, pattern: str) -> Iterator[tuple[str, str]]:
        """(roleId, value of its `<..>`) for each role a role-id pattern assumes."""
        star = pattern.endswith("*")
        stem = pattern[:-1] if star else pattern
        if star:
            for k in range(bisect_left(self._stems, stem), len(self._stems)):
                candidate = self._stems[k]
                if not candidate.startswith(stem):
                    break
                if candidate in self._exact:
                    yield candidate, ""
                if candidate in self._prefix:
                    yield candidate + "*", "*"
        elif stem in self._exact:
            yield stem, ""
        for n in self._prefix_lengths:
            if n > len(stem) or (star and n == len(stem)):
                break
            if stem[:n] in self._prefix:
                yield stem[:n] + "*", pattern[n:]

    def grants(self, pattern: str) -> tuple[str, ...]:
        """Scopes granted directly (one step) by assuming a role-id pattern."""
        granted = self._grants.get(pattern)
        if granted is None:
            granted = tuple(
                scope for role_id, value in self.matching(pattern)
                for scope in self.role(role_id).granted(value)
            )
            if len(self._grants) >= self._cache_size:
                self._grants.clear()
            self._grants[pattern] = granted
        return granted

    def expand(self, scopes: Iterable[str]) -> list[str]:
        """The normalized set of `scopes` plus every scope reachable via roles.

        Every authenticated request expands its caller's scopes, nearly always
        the same few lists: a remembered result is one lookup, where working
        it out again walks several functions whose code and data a busy
        server no longer has in the processor's caches (``bench/README.md``).
        """
        asked = tuple(scopes)
        found = self._results.get(asked)
        if found is not None:
            return list(found)
        result = self._expand(asked)
        size = len(asked) + len(result)
        if self._cache_size and size <= RESULT_SCOPES_HELD // 10:
            with self._lock:
                if self._results_held + size > RESULT_SCOPES_HELD:
                    self._results.clear()
                    self._results_held = 0
                if asked not in self._results:
                    self._results[asked] = tuple(result)
                    self._results_held += size
        return result

    def _expand(self, scopes: tuple[str, ...]) -> list[str]:
        given = normalize_scopes(scopes)
        assuming = tuple(s for s in given if assumed_role_pattern(s) is not None)
        if not assuming:
            return given
        with self._lock:
            granted = self._expansions.get(assuming)
            if granted is not None:
                self._expansions.move_to_end(assuming)
        if granted is None:
            granted = self._closure(assuming)
            with self._lock:
                self._expansions[assuming] = granted
                if len(self._expansions) > self._cache_size:
                    self._expansions.popitem(last=False)
        return merge_scope_sets(granted, given)

    def _closure(self, assuming: tuple[str, ...]) -> list[str]:
        # Invariant that lets this skip work: if scope A satisfies scope B, then
        # everything B grants (through any chain of roles) is satisfied by
        # something A grants. A role-id pattern `Q*` assumes every role that a
        # pattern starting with Q does, with a parameter that is `*` or a
        # prefix of theirs followed by `*`, and a `<..>` filled that way
        # satisfies every other filling. So once `Q*` has been expanded, any
        # pattern starting with Q adds nothing after normalization and is
        # skipped; star patterns are expanded first to make that common.
        granted: set[str] = set()
        seen: set[str] = set()
        expanded_stars = _Prefixes()
        stars: list[str] = []
        others: list[str] = []

        def schedule(scope: str) -> None:
            pattern = assumed_role_pattern(scope)
            if pattern is not None and pattern not in seen:
                seen.add(pattern)
                (stars if pattern.endswith("*") else others).append(pattern)

        for scope in assuming:
            schedule(scope)
        while stars or others:
            pattern = stars.pop() if stars else others.pop()
            if expanded_stars.any_prefix_of(pattern):
                continue
            if pattern.endswith("*"):
                expanded_stars.add(pattern[:-1])
            for scope in self.grants(pattern):
                if scope not in granted:
                    granted.add(scope)
                    schedule(scope)
        return normalize_scopes(granted)


def check_roles(roles: Mapping[str, Iterable[str]]) -> None:
    """Raise InvalidScopeError or DependencyCycleError as Taskcluster would
    when creating or updating a role so that the whole set becomes `roles`."""
    RoleIndex(roles, cache_size=0)


def _check(roles: Mapping[str, tuple[str, ...]], index: RoleIndex) -> None:
    for role_id, scopes in roles.items():
        if role_id.endswith("*"):
            _check_parameterized(scopes)
    _DependencyWalk(roles, index).check()


def _check_parameterized(scopes: tuple[str, ...]) -> None:
    marked = normalize_scopes(s.replace(PARAMETER, "\x1a", 1) for s in scopes if PARAMETER in s)
    for scope in (s.replace("\x1a", PARAMETER) for s in marked):
        if scope.count(PARAMETER) > 1:
            raise InvalidScopeError(
                f"parameterized scope '{scope}' contains multiple '{PARAMETER}'", scope=scope
            )
        if scope.endswith("*" + PARAMETER):
            raise InvalidScopeError(
                f"parameterized scope '{scope}' ends with '*{PARAMETER}' "
                "which implies an ambiguous kleene",
                scope=scope,
            )


class _DependencyWalk:
    """Depth-first search for a cycle among roles, in Taskcluster's order.

    Role R depends on role S if some filling of R's `<..>` grants a scope that
    assumes S; the worst case, filling with `*`, finds every such S. The order
    of the walk only matters for which cycle the error message reports.
    """

    def __init__(self, roles: Mapping[str, tuple[str, ...]], index: RoleIndex) -> None:
        self.roles = roles
        self.index = index
        self.ids = list(roles)
        self.position = {role_id: i for i, role_id in enumerate(self.ids)}

    def dependencies(self, role_id: str) -> list[str]:
        scopes = self.roles[role_id]
        if role_id.endswith("*"):
            plain = [s for s in scopes if PARAMETER not in s and _assumes(s)]
            worst = [f"{s.partition(PARAMETER)[0]}*" for s in scopes if PARAMETER in s]
            ordered = normalize_scopes(plain) + normalize_scopes(filter(_assumes, worst))
        else:
            ordered = normalize_scopes(filter(_assumes, scopes))
        if not ordered:
            return []
        found: dict[str, None] = {}
        for scope in ordered:
            matched = (self.position[r] for r, _ in self.index.matching(assumed_role_pattern(scope)))
            found.update((self.ids[i], None) for i in sorted(matched, key=str))
        return list(found)

    def check(self) -> None:
        seen: dict[str, int] = {}  # insertion-ordered, never shrinks (as upstream)
        done: set[str] = set()
        for root in self.ids:
            if root in done:
                continue
            seen.setdefault(root, len(seen))
            path = [(root, iter(self.dependencies(root)))]
            while path:
                role_id, pending = path[-1]
                for dep in pending:
                    if dep in done:
                        continue
                    if dep in seen:
                        ordered = list(seen)[seen[dep]:] + [dep]
                        raise DependencyCycleError([_ASSUME + r for r in ordered])
                    seen[dep] = len(seen)
                    path.append((dep, iter(self.dependencies(dep))))
                    break
                else:
                    path.pop()
                    done.add(role_id)
