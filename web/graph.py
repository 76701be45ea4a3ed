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
