"""The indexed router chooses the route Starlette's router would, trying far fewer.

Checked on Cairn's whole app: a path made from every route's own template
(and some that match nothing), under every method, resolves to the same
route through the index as through every route in order.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.convertors import IntegerConvertor, PathConvertor
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match, Mount, Route, Router

from cairn.api.routing import IndexedRouter, shape
from cairn.runtime import Runtime
from cairn.server import create_app
from tests.conftest import test_settings as settings_for

METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("routing")
    runtime = Runtime(settings_for(f"sqlite:///{tmp / 'cairn.db'}", tmp))
    yield create_app(runtime)
    runtime.close()


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}


def _resolve(router: Router, scope: dict[str, Any], indexed: bool) -> BaseRoute | None:
    """The route (below mounts) that takes the request in full, as the router's app would find it."""
    path = scope["path"][len(scope["root_path"]):] if scope["path"].startswith(scope["root_path"]) else scope["path"]
    routes = router.candidates(path) if indexed else router.routes
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            inner = getattr(route, "_base_app", None)
            if isinstance(route, Mount) and isinstance(inner, Router):
                return _resolve(inner, {**scope, **child}, indexed)
            return route
    return None


def _templates(router: Router, prefix: str = "") -> Iterator[str]:
    for route in router.routes:
        if isinstance(route, Mount):
            inner = getattr(route, "_base_app", None)
            if isinstance(inner, Router):
                yield from _templates(inner, prefix + route.path)
            else:
                yield prefix + route.path + "/{rest:path}"
        elif isinstance(route, Route):
            yield prefix + route.path


def _example(template: str) -> list[str]:
    """Paths the template matches, and near misses: a segment more, a segment less, a slash more."""
    def fill(m: re.Match[str]) -> str:
        kind = m.group(2) or "str"
        return {"int": "7", "path": "a/b/c", "float": "1.5", "uuid": "8d9a1d1e-6e4b-4f55-9a2c-7e3a8c0d0b1a"}.get(
            kind, "x-1_A")
    path = re.sub(r"\{(\w+)(?::(\w+))?\}", fill, template)
    return [path, path + "/extra", path.rsplit("/", 1)[0] or "/", path + "/"]


def test_every_request_goes_to_the_route_starlette_would_choose(app: Any) -> None:
    paths = {p for template in _templates(app.router) for p in _example(template)}
    paths |= {"/", "/api", "/api/", "/api/queue/v1", "/api/queue/v1/", "/nowhere/at/all", "/api/queue/v1/task/",
              "/api/queue/v1/task//status", "/api/nope/v1/ping", "/api/queue/v1/task/a%2Fb/status"}
    assert len(paths) > 300
    chosen = 0
    for path, method in itertools.product(sorted(paths), METHODS):
        expected = _resolve(app.router, _scope(method, path), indexed=False)
        assert _resolve(app.router, _scope(method, path), indexed=True) is expected, (method, path)
        chosen += expected is not None
    assert chosen > 300  # most of them reach a route: the comparison is not between two Nones


def test_a_lifecycle_tries_a_fifth_of_the_routes(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tried = {"n": 0}
    for cls in (Route, Mount):
        original = cls.matches

        def counting(self: Any, scope: Any, _original: Any = original) -> Any:
            tried["n"] += 1
            return _original(self, scope)

        monkeypatch.setattr(cls, "matches", counting)
    lifecycle = [("PUT", "/api/queue/v1/task/fN1WCuBgSVi1S3JF5mCyEg"),
                 ("POST", "/api/queue/v1/claim-work/proj/worker"),
                 ("POST", "/api/queue/v1/task/fN1WCuBgSVi1S3JF5mCyEg/runs/0/completed")]
    counts = {}
    for indexed in (False, True):
        tried["n"] = 0
        for method, path in lifecycle:
            assert _resolve(app.router, _scope(method, path), indexed) is not None
        counts[indexed] = tried["n"]
    assert counts[False] >= 60  # every route in order, as Starlette tries them
    assert counts[True] <= counts[False] / 4


def test_shapes_of_routes() -> None:
    def endpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse("")

    task = Route("/task/{taskId}/runs/{runId:int}/completed", endpoint)
    assert shape(task) == (("task",), 5)
    assert isinstance(task.param_convertors["runId"], IntegerConvertor)
    secret = Route("/secret/{name:path}", endpoint)
    assert isinstance(secret.param_convertors["name"], PathConvertor)
    assert shape(secret) == (("secret",), None)  # a path parameter spans segments
    assert shape(Route("/", endpoint)) == (("",), 1)
    assert shape(Mount("/api/queue/v1", routes=[])) == (("api", "queue", "v1"), None)
    assert shape(Mount("", routes=[])) == ((), None)  # at the root: every path


def test_routes_added_later_are_tried() -> None:
    def endpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse("")

    router = IndexedRouter([Route("/a/{x}", endpoint)])
    assert router.candidates("/b/1") == []
    later = Route("/b/{y}", endpoint)
    router.routes.append(later)
    assert router.candidates("/b/1") == [later]
