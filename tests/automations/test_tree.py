"""The step tree of the series page (automations/tree.py): branches become side-by-side columns,
a step two pointers reach is drawn once where first reached and linked from elsewhere, and an
empty pointer ends its column."""

from __future__ import annotations

from typing import Any

from automations.tree import Path, step_tree

BRANCHING: dict[str, Any] = {
    "start": "welcome",
    "steps": [
        {"key": "welcome", "type": "send", "template": 1, "next": "ordered"},
        {
            "key": "ordered",
            "type": "condition",
            "events_since_entry": [{"event": "Order Completed"}],
            "yes": None,
            "no": "test",
        },
        {
            "key": "test",
            "type": "split",
            "branches": [{"name": "Coupon", "percent": 30, "next": "coupon"}, {"percent": 70, "next": "thanks"}],
        },
        {"key": "coupon", "type": "send", "template": 2, "next": "thanks"},
        {"key": "thanks", "type": "send", "template": 3, "next": "bye"},
        {"key": "bye", "type": "exit"},
    ],
}


def _keys(path: Path) -> list[str]:
    return [node.key for node in path.nodes]


def test_a_branching_graph_becomes_columns_with_a_shared_step_drawn_once() -> None:
    rows = {step["key"]: f"row of {step['key']}" for step in BRANCHING["steps"]}
    tree = step_tree(BRANCHING, rows)

    assert _keys(tree.root) == ["welcome", "ordered"] and tree.unreached == []
    assert tree.root.nodes[0].row == "row of welcome" and tree.root.nodes[0].branches == []
    yes, no = tree.root.nodes[1].branches
    assert (yes.exit, yes.label, yes.percent) == ("yes", "yes", None)
    assert yes.path.nodes == [] and yes.path.ends  # an empty pointer: the column ends
    assert (no.exit, no.label) == ("no", "no") and _keys(no.path) == ["test"]

    coupon, rest = no.path.nodes[0].branches
    assert (coupon.exit, coupon.label, coupon.percent) == ("branches[0].next", "Coupon", 30)
    assert (rest.label, rest.percent) == ("B", 70)  # an unnamed branch goes by its letter
    # "thanks" is reached from both branches: drawn under the first, linked from the second.
    assert _keys(coupon.path) == ["coupon", "thanks", "bye"]
    assert not coupon.path.ends and coupon.path.continues_at is None  # the exit card ends it
    assert rest.path.nodes == [] and rest.path.continues_at == "thanks"


def test_a_straight_series_is_one_column_and_a_missing_start_means_the_first_step() -> None:
    tree = step_tree(
        {
            "steps": [
                {"key": "a", "type": "wait", "amount": 1, "unit": "days", "next": "b"},
                {"key": "b", "type": "send", "template": 1},
            ]
        }
    )
    assert _keys(tree.root) == ["a", "b"] and tree.root.ends
    assert all(node.row is None for node in tree.root.nodes)


def test_steps_nothing_reaches_and_loops_are_still_drawn_once() -> None:
    tree = step_tree(
        {
            "start": "a",
            "steps": [
                {"key": "a", "type": "wait", "amount": 1, "unit": "days", "next": "b"},
                {"key": "b", "type": "wait", "amount": 1, "unit": "days", "next": "a"},
                {"key": "orphan", "type": "send", "template": 1, "next": "nowhere"},
            ],
        }
    )
    assert _keys(tree.root) == ["a", "b"] and tree.root.continues_at == "a"
    [orphan] = tree.unreached
    assert _keys(orphan) == ["orphan"] and orphan.continues_at == "nowhere"


def test_no_steps_is_an_empty_tree() -> None:
    tree = step_tree(None)
    assert tree.root.nodes == [] and not tree.root.ends and tree.unreached == []
