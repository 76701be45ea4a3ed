"""The pages that list what a deployment holds: recent groups, task queues, the index, clients and roles.

Each reads through the API endpoint that answers the same question, so a
visitor sees exactly what their scopes would let them fetch with a client.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cairn.api.auth.handlers import auth
from cairn.api.index.handlers import index
from cairn.api.queue.service import queue
from cairn.web.api_bridge import permitted, run_endpoint
from cairn.web.context import WebContext
from cairn.web.pages import render
from cairn.web.session import Visitor

LISTED = {"limit": "1000"}


def home_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    groups = [
        g for g in ctx.groups.recent(50) if permitted(who.caller, queue, "getTaskGroup", taskGroupId=g["task_group_id"])
    ]
    return render(ctx, request, who, "home.html", groups=groups)


def provisioners_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    listed = run_endpoint(ctx.api, request, who.caller, queue, "listTaskQueues", query=LISTED)
    queues = []
    for entry in listed["taskQueues"]:
        queue_id = entry["taskQueueId"]
        provisioner_id, worker_type = queue_id.split("/", 1)
        row: dict[str, Any] = {"taskQueueId": queue_id, "pending": None, "claimed": None, "idle": None, "workers": None}
        if permitted(who.caller, queue, "taskQueueCounts", taskQueueId=queue_id):
            counts = run_endpoint(ctx.api, request, who.caller, queue, "taskQueueCounts", {"taskQueueId": queue_id})
            row.update(pending=counts["pendingTasks"], claimed=counts["claimedTasks"])
        worker_params = {"provisionerId": provisioner_id, "workerType": worker_type}
        if permitted(who.caller, queue, "listWorkers", **worker_params):
            listed_workers = run_endpoint(ctx.api, request, who.caller, queue, "listWorkers", worker_params, LISTED)
            workers = listed_workers["workers"]
            row["workers"] = workers
            if permitted(who.caller, queue, "listClaimedTasks", taskQueueId=queue_id):
                claimed = run_endpoint(
                    ctx.api, request, who.caller, queue, "listClaimedTasks", {"taskQueueId": queue_id}, LISTED
                )["tasks"]
                busy = {(t["workerGroup"], t["workerId"]) for t in claimed}
                for worker in workers:
                    worker["busy"] = (worker["workerGroup"], worker["workerId"]) in busy
                row["idle"] = sum(1 for w in workers if not w["busy"] and "quarantineUntil" not in w)
        queues.append(row)
    return render(ctx, request, who, "provisioners.html", queues=queues)


def index_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    namespace = request.path_params.get("namespace", "").strip(".")
    params = {"namespace": namespace} if namespace else {}
    namespaces = run_endpoint(ctx.api, request, who.caller, index, "listNamespaces", params, LISTED)["namespaces"]
    tasks = run_endpoint(ctx.api, request, who.caller, index, "listTasks", params, LISTED)["tasks"]
    parts = namespace.split(".") if namespace else []
    crumbs = [(".".join(parts[: i + 1]), part) for i, part in enumerate(parts)]
    return render(
        ctx, request, who, "index.html", namespace=namespace, namespaces=namespaces, tasks=tasks, crumbs=crumbs
    )


def clients_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    prefix = request.query_params.get("prefix", "")
    query = {**LISTED, **({"prefix": prefix} if prefix else {})}
    clients = run_endpoint(ctx.api, request, who.caller, auth, "listClients", query=query)["clients"]
    return render(ctx, request, who, "clients.html", clients=clients, prefix=prefix)


def roles_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    roles = run_endpoint(ctx.api, request, who.caller, auth, "listRoles")
    return render(ctx, request, who, "roles.html", roles=roles)
