"""A Starlette router that tries only the routes a request's path could match.

Starlette's router tries its routes in order, a regular expression each,
until one matches in full. Under the queue's mount alone there are 52
routes, and reportCompleted is the 23rd; with the routes before the
mounts, a task's lifecycle (createTask, claimWork, reportCompleted) cost 71
matches (``bench/README.md``).

Here a route's path is known by its shape: the literal segments it starts
with (``/task/{taskId}/runs/{runId}/completed``: ``task``; a mount's
``/api/queue/v1``: ``api``, ``queue``, ``v1``), and how many segments it
has, when that is fixed (every parameter one segment: not a ``:path``
parameter, not a mount, which matches whatever lies below it). A request
tries only the routes whose shape its path fits, in the routes' order. A
route whose shape it does not fit cannot match it in any way (its
expression starts with other literal text, or matches another number of
segments), so the first full match among those tried is the first full
match among all the routes: the one Starlette would choose.

Anything else (no full match: a 405 for another method, a redirect to the
path with or without its slash, a 404; websockets; lifespan) goes to
Starlette's own router as it is, over all the routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette._utils import get_route_path
from starlette.convertors import FloatConvertor, IntegerConvertor, StringConvertor, UUIDConvertor
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import Receive, Scope, Send

#: Parameters whose values never hold a slash: each is one segment of a path.
ONE_SEGMENT = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)

def shape(route: BaseRoute) -> tuple[tuple[str, ...], int | None]:
    """The literal segments that start every path ``route`` matches, and their number of segments (None: any)."""
    if isinstance(route, Route):
        fixed = all(isinstance(c, ONE_SEGMENT) for c in route.param_convertors.values())
        path = route.path
    elif isinstance(route, Mount):
        fixed, path = False, route.path  # "" at the root: every path
    else:
        return (), None
    if not path.startswith("/"):
        return (), None
    segments = path[1:].split("/")
    literal: list[str] = []
    for segment in segments:
        if "{" in segment:
            break
        literal.append(segment)
    return tuple(literal), len(segments) if fixed else None


class IndexedRouter(Router):
    """Starlette's router, trying only the routes a request's path could match (see the module).

    The shapes are taken from ``routes`` when the router is made, and again
    if routes are added later.
    """

    def __init__(self, routes: Sequence[BaseRoute] | None = None, **kwargs: Any) -> None:
        super().__init__(routes, **kwargs)
        self._index()

    def _index(self) -> None:
        # A tree of the routes' leading literal segments: a request walks it
        # down its own segments as far as they go, and each node reached holds,
        # by number of segments, the routes whose literal segments it has walked.
        root = _Node()
        for position, route in enumerate(self.routes):
            literal, count = shape(route)
            node = root
            for segment in literal:
                node = node.children.setdefault(segment, _Node())
            node.own.append((position, route, count))
        root.gather([])
        self._root = root
        self._indexed = len(self.routes)

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that may match ``path`` (a route path: ``get_route_path``), in the routes' order."""
        if len(self.routes) != self._indexed:
            self._index()
        segments = path[1:].split("/") if path.startswith("/") else [path]
        node = self._root
        for segment in segments:
            child = node.children.get(segment)
            if child is None:
                break
            node = child
        return node.by_count.get(len(segments), node.any_count)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.candidates(get_route_path(scope)):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    if "router" not in scope:
                        scope["router"] = self
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)


class _Node:
    """Routes whose leading literal segments lead here, and those on the way."""

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        #: (position among the routes, route, number of segments or None) of routes ending here.
        self.own: list[tuple[int, BaseRoute, int | None]] = []
        #: The routes here and above, in order: those that may match a path of that many segments.
        self.by_count: dict[int, list[BaseRoute]] = {}
        #: ... and of any other number of segments.
        self.any_count: list[BaseRoute] = []

    def gather(self, above: list[tuple[int, BaseRoute, int | None]]) -> None:
        reached = sorted(above + self.own, key=lambda entry: entry[0])
        self.any_count = [route for _, route, count in reached if count is None]
        counts = {count for _, _, count in reached if count is not None}
        self.by_count = {
            n: [route for _, route, count in reached if count is None or count == n] for n in counts
        }
        for child in self.children.values():
            child.gather(reached)
