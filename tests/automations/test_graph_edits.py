"""The builder's graph edits (pure): insert on an edge, delete, duplicate, move, update."""

from __future__ import annotations

import pytest

from automations.graph_edits import (
    Edge,
    EditError,
    delete_step,
    duplicate_step,
    edges_into,
    insert_step,
    move_down,
    move_step,
    move_up,
    update_step,
)


def chain() -> dict:
    return {
        "start": "a",
        "steps": [
            {"key": "a", "type": "send", "template": 1, "next": "w"},
            {"key": "w", "type": "wait", "amount": 1, "unit": "days", "next": "c"},
            {"key": "c", "type": "condition", "rules": {}, "yes": "y1", "no": "n1"},
            {"key": "y1", "type": "send", "template": 2, "next": None},
            {"key": "n1", "type": "wait", "amount": 2, "unit": "hours", "next": "n2"},
            {"key": "n2", "type": "send", "template": 3, "next": None},
        ],
    }


def by_key(steps: dict) -> dict:
    return {s["key"]: s for s in steps["steps"]}


def test_insert_on_an_edge_puts_the_continuation_after_the_new_step():
    steps, key = insert_step(chain(), Edge("a", "next"), "wait")
    assert key == "wait-1"
    s = by_key(steps)
    assert s["a"]["next"] == "wait-1"
    assert s["wait-1"] == {"key": "wait-1", "type": "wait", "amount": 1, "unit": "days", "next": "w"}
    assert [x["key"] for x in steps["steps"]][:3] == ["a", "wait-1", "w"]


def test_insert_at_the_start_and_into_an_empty_series():
    steps, key = insert_step(chain(), Edge(None), "send")
    assert steps["start"] == key and by_key(steps)[key]["next"] == "a"
    empty, first = insert_step({"start": None, "steps": []}, Edge(None), "wait")
    assert empty == {
        "start": first,
        "steps": [{"key": first, "type": "wait", "amount": 1, "unit": "days", "next": None}],
    }


def test_insert_a_condition_puts_what_followed_on_yes():
    steps, key = insert_step(chain(), Edge("w", "next"), "condition")
    s = by_key(steps)
    assert s[key]["yes"] == "c" and s[key]["no"] is None and s["w"]["next"] == key


def test_insert_a_split_puts_what_followed_on_its_first_branch():
    steps, key = insert_step(chain(), Edge("y1", "next"), "split")
    assert by_key(steps)[key]["branches"] == [{"percent": 50, "next": None}, {"percent": 50, "next": None}]
    steps, key = insert_step(chain(), Edge("a", "next"), "split")
    assert [b["next"] for b in by_key(steps)[key]["branches"]] == ["w", None]


def test_an_exit_only_goes_at_the_end_of_a_path():
    with pytest.raises(EditError):
        insert_step(chain(), Edge("a", "next"), "exit")
    steps, key = insert_step(chain(), Edge("y1", "next"), "exit")
    assert by_key(steps)["y1"]["next"] == key


def test_unknown_kind_or_gone_step_is_refused_with_a_sentence():
    with pytest.raises(EditError, match="kind"):
        insert_step(chain(), Edge("a", "next"), "teleport")
    with pytest.raises(EditError, match="gone"):
        insert_step(chain(), Edge("zz", "next"), "wait")
    with pytest.raises(EditError, match="out of date"):
        insert_step(chain(), Edge("a", "yes"), "wait")


def test_delete_reconnects_and_a_branching_step_keeps_one_branch():
    s = by_key(delete_step(chain(), "w"))
    assert s["a"]["next"] == "c" and "w" not in s
    kept_no = delete_step(chain(), "c", keep="no")
    s = by_key(kept_no)
    assert s["w"]["next"] == "n1" and "y1" not in s and "c" not in s and "n2" in s
    kept_yes = by_key(delete_step(chain(), "c"))
    assert kept_yes["w"]["next"] == "y1" and "n1" not in kept_yes and "n2" not in kept_yes


def test_delete_the_start_and_the_last_step():
    steps = delete_step(chain(), "a")
    assert steps["start"] == "w"
    only = {"start": "a", "steps": [{"key": "a", "type": "wait", "amount": 1, "unit": "days", "next": None}]}
    assert delete_step(only, "a") == {"start": None, "steps": []}


def test_delete_keeps_steps_that_were_unreached_before():
    steps = chain()
    steps["steps"].append({"key": "lost", "type": "wait", "amount": 1, "unit": "days", "next": None})
    assert "lost" in by_key(delete_step(steps, "c"))


def test_duplicate_puts_a_copy_right_under_the_step():
    steps, key = duplicate_step(chain(), "a")
    s = by_key(steps)
    assert s["a"]["next"] == key and s[key]["next"] == "w" and s[key]["template"] == 1
    steps, key = duplicate_step(chain(), "c")
    s = by_key(steps)
    assert s["c"]["yes"] == key and s[key]["yes"] == "y1" and s[key]["no"] is None and s["c"]["no"] == "n1"


def test_move_up_and_down_within_a_column():
    s = by_key(move_up(chain(), "w"))
    assert s["w"]["next"] == "a" and s["a"]["next"] == "c"
    steps = move_up(chain(), "w")
    assert steps["start"] == "w"
    s = by_key(move_down(chain(), "a"))
    assert s["w"]["next"] == "a" and s["a"]["next"] == "c"
    with pytest.raises(EditError, match="top"):
        move_up(chain(), "a")
    with pytest.raises(EditError, match="bottom"):
        move_down(chain(), "y1")


def test_move_down_enters_the_first_branch_and_up_leaves_it():
    s = by_key(move_down(chain(), "w"))
    assert s["a"]["next"] == "c" and s["c"]["yes"] == "w" and s["w"]["next"] == "y1"
    s = by_key(move_up(chain(), "n1"))
    assert s["w"]["next"] == "n1" and s["n1"]["next"] == "c" and s["c"]["no"] == "n2"


def test_move_into_another_branch():
    s = by_key(move_step(chain(), "n2", Edge("y1", "next")))
    assert s["y1"]["next"] == "n2" and s["n1"]["next"] is None and s["n2"]["next"] is None


def test_a_branching_step_moves_with_its_branches_to_the_end_of_a_path():
    steps = chain()
    steps["steps"][3]["next"] = None
    with pytest.raises(EditError, match="end of a path"):
        move_step(chain(), "c", Edge(None))
    with pytest.raises(EditError, match="own branches"):
        move_step(chain(), "c", Edge("n2", "next"))
    split = {
        "start": "s",
        "steps": [
            {"key": "s", "type": "split", "branches": [{"percent": 50, "next": "c"}, {"percent": 50, "next": None}]},
            {"key": "c", "type": "condition", "rules": {}, "yes": "y1", "no": None},
            {"key": "y1", "type": "send", "template": 2, "next": None},
        ],
    }
    moved = by_key(move_step(split, "c", Edge("s", "branches[1].next")))
    assert [b["next"] for b in moved["s"]["branches"]] == [None, "c"]
    assert moved["c"]["yes"] == "y1" and "y1" in moved


def test_moving_onto_its_own_place_changes_nothing():
    assert move_step(chain(), "w", Edge("a", "next")) == chain()
    assert move_step(chain(), "w", Edge("w", "next")) == chain()


def test_update_keeps_key_kind_and_pointers():
    s = by_key(update_step(chain(), "w", {"amount": 5, "unit": "hours", "next": "zz", "key": "evil", "name": "Pause"}))
    assert s["w"] == {"key": "w", "type": "wait", "amount": 5, "unit": "hours", "next": "c", "name": "Pause"}


def test_update_a_split_keeps_columns_by_position_and_drops_a_removed_branch():
    steps, key = insert_step(chain(), Edge("a", "next"), "split")
    three = update_step(steps, key, {"branches": [{"percent": 40}, {"percent": 30}, {"percent": 30, "name": "C"}]})
    assert [b["next"] for b in by_key(three)[key]["branches"]] == ["w", None, None]
    one_left = update_step(three, key, {"branches": [{"percent": 100}, {"percent": 0}]})
    assert by_key(one_left)[key]["branches"][0]["next"] == "w"
    gone = update_step(steps, key, {"branches": [{"percent": 50}, {"percent": 50}]})
    moved, _k = (move_step(gone, "w", Edge(key, "branches[1].next")), None)
    dropped = update_step(moved, key, {"branches": [{"percent": 100}]})
    assert "w" not in by_key(dropped) and "c" in by_key(dropped)


def test_edges_into_names_every_pointer():
    assert edges_into(chain(), "a") == [Edge(None)]
    assert edges_into(chain(), "c") == [Edge("w", "next")]
    assert str(Edge("c", "yes")) == "c:yes" and Edge.parse(":start") == Edge(None)
