"""The dependency graph's layout: columns by longest chain of prerequisites inside the group."""

from __future__ import annotations

from cairn.web.graph import NODE_WIDTH, depths, layout, svg


def test_depth_is_the_longest_chain_of_prerequisites_in_the_group():
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("outside", "a"), ("c", "c")]
    assert depths(["a", "b", "c", "d"], edges) == {"a": 0, "b": 1, "c": 2, "d": 0}


def test_tasks_of_one_depth_share_a_column_and_edges_join_them():
    tasks = [{"task_id": t, "name": f"task {t}", "state": "pending"} for t in ("a", "b", "c")]
    drawn = layout(tasks, [("a", "b"), ("a", "c")])
    x = {n.task_id: n.x for n in drawn.nodes}
    assert x["b"] == x["c"] > x["a"]
    assert len(drawn.edges) == 2 and all(e.x1 == x["a"] + NODE_WIDTH and e.x2 == x["b"] for e in drawn.edges)
    assert drawn.width == x["b"] + NODE_WIDTH + 8


def test_labels_are_shortened_and_escaped():
    drawn = layout([{"task_id": "a", "name": "<b>" + "x" * 40, "state": "running"}], [])
    assert drawn.nodes[0].label.endswith("…") and len(drawn.nodes[0].label) == 22
    assert "&lt;b&gt;" in svg(drawn) and "<b>" not in svg(drawn)
