"""The index service: tasks found by name.

Entries are IndexedTask events folded into the index views; completed tasks
are indexed by the task indexer (``consumers/task_indexer.py``) under their
``index.<namespace>`` routes, and insertTask adds entries directly. Reads
come from the views and leave out expired entries. Slashes are not allowed
in index paths; the root namespace is the empty one.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from mohawk.base import Resource
from mohawk.bewit import get_bewit
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cairn.api.app import EndpointRunner
from cairn.api.call import Call
from cairn.api.endpoints import Service
from cairn.api.errors import InputError, ResourceNotFound
from cairn.api.index.context import IndexContext
from cairn.api.pagination import page
from cairn.domain.auth.scopes import satisfies
from cairn.domain.index.model import NAMESPACE
from cairn.domain.timestamps import iso, parse_time, utcnow

SIGNED_URL_LIFETIME = 15 * 60
PATH = NAMESPACE.pattern
#: listNamespaces and listTasks also take the root, the empty namespace.
PATH_OR_ROOT = f"({PATH})?"
LIST_QUERY = ("continuationToken", "limit")

index = Service(
    name="index",
    title="Index Service",
    description=(
        "The index finds tasks by user-defined names: dotted paths such as "
        "`project.app.latest`, each holding the highest-ranked task indexed there. "
        "A task that completes is indexed under each of its `index.<namespace>` routes. "
        "Slashes (`/`) aren't allowed in index paths."
    ),
)
IndexCall = Call[IndexContext]


def _now() -> str:
    return iso(utcnow())


def _namespace(row: dict[str, Any]) -> str:
    return row["namespace"]


def _found(call: IndexCall, path: str) -> dict[str, Any]:
    entry = call.context.reads.entry(path, _now())
    if entry is None:
        raise ResourceNotFound(f"Indexed task not found at {path}")
    return entry


def _listed(call: IndexCall) -> str:
    """The namespace to list, authorized; the root has none in the path."""
    namespace = call.params.get("namespace", "")
    call.authorize(namespace=namespace)
    return namespace



@index.endpoint(
    "findTask",
    "GET",
    "/task/<indexPath>",
    title="Find Indexed Task",
    category="Index Service",
    scopes="index:find-task:<indexPath>",
    output="indexed-task-response",
    params={"indexPath": PATH},
)
def find_task(call: IndexCall) -> dict[str, Any]:
    """The task indexed at a path, the highest-ranked one; 404 if there is none."""
    return _found(call, call.params["indexPath"])


@index.endpoint(
    "findTasksAtIndex",
    "POST",
    "/tasks/indexes",
    title="Find tasks at indexes",
    category="Index Service",
    stability="experimental",
    scopes={"AllOf": [{"for": "indexPath", "in": "indexPaths", "each": "index:find-task:<indexPath>"}]},
    input="list-tasks-at-index",
    output="list-tasks-response",
    query=LIST_QUERY,
    deferred_auth=True,
)
def find_tasks_at_index(call: IndexCall) -> dict[str, Any]:
    """The tasks indexed at several paths, in the order asked; paths without one are left out.

    Up to 1000 at a time; a ``continuationToken`` asks for the next page
    with the same body.
    """
    paths = list(dict.fromkeys(call.body.get("indexes", [])))
    call.authorize(indexPaths=paths)
    found = call.context.reads.entries(paths, _now())
    numbered = [(f"{i:08d}", found[p]) for i, p in enumerate(paths) if p in found]
    chunk, token = page(call, numbered, key=lambda item: item[0])
    return {"tasks": [entry for _, entry in chunk], **token}


@index.endpoint(
    "listNamespaces",
    "GET",
    "/namespaces/<namespace>",
    title="List Namespaces",
    category="Index Service",
    scopes="index:list-namespaces:<namespace>",
    output="list-namespaces-response",
    query=LIST_QUERY,
    greedy=("namespace",),
    params={"namespace": PATH_OR_ROOT},
    deferred_auth=True,
)
def list_namespaces(call: IndexCall) -> dict[str, Any]:
    """The namespaces directly under a namespace, up to 1000 at a time."""
    namespace = _listed(call)
    limit, after = page.bounds(call)
    rows, more = page.cut(call.context.reads.namespaces_under(namespace, after, limit + 1, _now()), limit, _namespace)
    return {"namespaces": rows, **more}


@index.endpoint(
    "listTasks",
    "GET",
    "/tasks/<namespace>",
    title="List Tasks",
    category="Index Service",
    scopes="index:list-tasks:<namespace>",
    output="list-tasks-response",
    query=LIST_QUERY,
    greedy=("namespace",),
    params={"namespace": PATH_OR_ROOT},
    deferred_auth=True,
)
def list_tasks(call: IndexCall) -> dict[str, Any]:
    """The tasks indexed directly under a namespace, up to 1000 at a time."""
    namespace = _listed(call)
    limit, after = page.bounds(call)
    rows, more = page.cut(call.context.reads.entries_under(namespace, after, limit + 1, _now()), limit, _namespace)
    return {"tasks": rows, **more}


@index.endpoint(
    "insertTask",
    "PUT",
    "/task/<namespace>",
    title="Insert Task into Index",
    category="Index Service",
    scopes="index:insert-task:<namespace>",
    input="insert-task-request",
    output="indexed-task-response",
    params={"namespace": PATH},
)
def insert_task(call: IndexCall) -> dict[str, Any]:
    """Index a task at a path. A rank lower than the entry's leaves the entry in
    place and still answers 200, with the entry that stays; an equal or higher
    rank replaces it.
    """
    body = call.body
    try:
        expires = parse_time(body["expires"])
    except ValueError:
        raise InputError(f"expires is not a date-time: {body['expires']}") from None
    return call.context.service.insert(
        call.params["namespace"], body["taskId"], body["rank"], body["data"], expires, utcnow()
    )


@index.endpoint(
    "deleteTask",
    "DELETE",
    "/task/<namespace>",
    title="Remove Task from Index",
    category="Index Service",
    scopes="index:delete-task:<namespace>",
    params={"namespace": PATH},
)
def delete_task(call: IndexCall) -> dict[str, Any]:
    """Remove the entry at a path, for administrators; the namespaces above stay,
    and lower-ranked inserts it once displaced do not come back. Idempotent.
    """
    call.context.service.delete(call.params["namespace"])
    return {}


@index.endpoint(
    "findArtifactFromTask",
    "GET",
    "/task/<indexPath>/artifacts/<name>",
    title="Get Artifact From Indexed Task",
    category="Index Service",
    scopes="queue:get-artifact:<name>",
    params={"indexPath": PATH, "name": r"[\x20-\x7e]+"},
    greedy=("name",),
    deferred_auth=True,
)
def find_artifact_from_task(call: IndexCall) -> Response:
    """Redirect (303) to the named artifact of the latest run of the task indexed at a path.

    The caller needs ``queue:get-artifact:<name>`` (every caller holds the
    ``anonymous`` role's scopes). An artifact the anonymous role may read is
    public and its URL plain; for others the URL is signed (valid for 15
    minutes) so that following it needs no credentials.
    """
    name = call.params["name"]
    call.authorize()
    public = satisfies(call.context.anonymous_scopes(), f"queue:get-artifact:{name}")
    task_id = _found(call, call.params["indexPath"])["taskId"]
    root_url = call.context.root_url.rstrip("/")
    url = f"{root_url}/api/queue/v1/task/{task_id}/artifacts/{quote(name, safe='')}"
    if not public:
        url = _signed(url, call.context.signer)
    return Response(status_code=303, headers={"Location": url})


def _signed(url: str, client: Any) -> str:
    """``url`` with a bewit of ``client``: a GET of it needs no other credentials."""
    resource = Resource(
        credentials={"id": client.client_id, "key": client.access_token, "algorithm": "sha256"},
        method="GET",
        url=url,
        timestamp=int(time.time()) + SIGNED_URL_LIFETIME,
        nonce="",
    )
    bewit = get_bewit(resource).rstrip("=")
    return f"{url}?bewit={bewit}"


def root_listing_routes() -> list[BaseRoute]:
    """listNamespaces and listTasks of the root namespace.

    Taskcluster's clients strip the trailing slash, so the root's listings
    arrive as ``/namespaces`` and ``/tasks``, without the (empty) namespace.
    """
    routes: list[BaseRoute] = []
    for endpoint in index.endpoints:
        if endpoint.name in ("listNamespaces", "listTasks"):
            path = index.base_path + endpoint.route.removesuffix("/<namespace>")
            routes.append(Route(path, EndpointRunner(index, endpoint).handle, methods=[endpoint.method]))
    return routes
