"""A task group's dependency graph, laid out by depth for a server-drawn SVG.

A task's depth is the length of the longest chain of prerequisites inside
the group above it; tasks of one depth form a column, in taskId order, and
each dependency is a line from the prerequisite's right edge to the
dependent's left edge. No graph library and no script: the layout is a
topological sort over the edges the read model already holds.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from markupsafe import Markup, escape

NODE_WIDTH = 168
NODE_HEIGHT = 26
COLUMN_GAP = 56
ROW_GAP = 10
MARGIN = 8


@dataclass(frozen=True)
class Node:
    task_id: str
    label: str
    state: str
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def depths(task_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path depth of each task, counting only prerequisites in the group."""
    known = set(task_ids)
    dependents: dict[str, list[str]] = defaultdict(list)
    waiting = dict.fromkeys(task_ids, 0)
    for prerequisite, dependent in edges:
        if prerequisite in known and dependent in known and prerequisite != dependent:
            dependents[prerequisite].append(dependent)
            waiting[dependent] += 1
    depth = dict.fromkeys(task_ids, 0)
    ready = deque(t for t in task_ids if waiting[t] == 0)
    while ready:
        task_id = ready.popleft()
        for dependent in dependents[task_id]:
            depth[dependent] = max(depth[dependent], depth[task_id] + 1)
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    return depth


def layout(tasks: list[dict[str, str]], edges: list[tuple[str, str]], label_chars: int = 22) -> Layout:
    """Positions for ``tasks`` (dicts with task_id, name, state, in taskId order) and their dependencies."""
    ids = [t["task_id"] for t in tasks]
    depth = depths(ids, edges)
    columns: dict[int, int] = defaultdict(int)
    where: dict[str, tuple[int, int]] = {}
    nodes = []
    for task in tasks:
        column = depth[task["task_id"]]
        row = columns[column]
        columns[column] += 1
        x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
        y = MARGIN + row * (NODE_HEIGHT + ROW_GAP)
        where[task["task_id"]] = (x, y)
        label = task.get("name") or task["task_id"]
        if len(label) > label_chars:
            label = label[: label_chars - 1] + "…"
        nodes.append(Node(task["task_id"], label, task["state"], x, y))
    lines = []
    for prerequisite, dependent in edges:
        if prerequisite in where and dependent in where and prerequisite != dependent:
            (x1, y1), (x2, y2) = where[prerequisite], where[dependent]
            lines.append(Edge(x1 + NODE_WIDTH, y1 + NODE_HEIGHT // 2, x2, y2 + NODE_HEIGHT // 2))
    width = MARGIN * 2 + (max(columns) + 1 if columns else 0) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP
    height = MARGIN * 2 + max(columns.values(), default=0) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    return Layout(nodes, lines, max(width, 0), max(height, 0))


def svg(drawn: Layout) -> Markup:
    """The layout as an SVG element: a link per task to its page, a curve per dependency.

    Written here rather than in a template: a group of 1,000 tasks makes
    some 3,000 elements, which a template loop renders several times slower.
    """
    w, h = drawn.node_width, drawn.node_height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{drawn.width}" height="{drawn.height}" '
        f'viewBox="0 0 {drawn.width} {drawn.height}"><g class="edges">'
    ]
    parts.extend(
        f'<path d="M{e.x1} {e.y1} C{e.x1 + 28} {e.y1} {e.x2 - 28} {e.y2} {e.x2} {e.y2}"/>' for e in drawn.edges
    )
    parts.append("</g>")
    for n in drawn.nodes:
        label, state = escape(n.label), escape(n.state)
        parts.append(
            f'<a href="/tasks/{escape(n.task_id)}" data-task="{escape(n.task_id)}" data-state="{state}">'
            f"<title>{label} ({state})</title>"
            f'<rect class="node state-{state}" x="{n.x}" y="{n.y}" width="{w}" height="{h}" rx="4"/>'
            f'<text x="{n.x + 8}" y="{n.y + 17}">{label}</text></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
