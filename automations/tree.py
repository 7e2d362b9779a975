"""A version's step graph as a vertical tree for the series page, laid out by the code.

The graph (see `automations/steps/graph.py`) is a set of steps pointing at each other by key;
the page draws it top to bottom from `start`: a step with one `next` continues the same column,
a step with several exits (condition, wait for event, random split) opens one column per exit,
side by side. The engine allows two pointers to reach one step, but a tree draws each step once:
it is drawn where a depth-first walk (yes before no, branches in order) first reaches it, and any
later pointer becomes a "continues at" link, so no card and no id appears twice. An empty pointer
ends its column with an "end" marker. Nothing is stored: no positions, so nothing can go stale.

Pure: it reads the JSON and the step kinds' exits, never the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from automations.describe import exit_label
from automations.steps import STEP_KINDS


@dataclass
class Branch:
    """One exit of a branching step and the column drawn under it."""

    exit: str  # the pointer's name: "yes", "no", "branches[0].next"
    label: str
    percent: int | None  # a split's share of people; None for yes / no
    path: Path


@dataclass
class Node:
    key: str
    step: dict[str, Any]
    row: Any  # what the page shows on the card (description, counts), given by the caller
    # The pointer that leads here, as the builder posts it ("welcome:next", ":start"): a step
    # inserted there comes right above this one.
    edge_in: str = ""
    branches: list[Branch] = field(default_factory=list)


@dataclass
class Path:
    """Steps drawn one under the other, then how the column finishes: with the last step's
    branches, at an exit step, at an "end" marker (`ends`), or with a link to a step drawn
    elsewhere (`continues_at`)."""

    nodes: list[Node] = field(default_factory=list)
    continues_at: str | None = None
    ends: bool = False
    # Where a step added at the bottom of this column goes (the last step's "next", or the
    # column's own pointer when it is empty); empty after an exit or a branching step.
    tail: str = ""


@dataclass
class Tree:
    root: Path
    # Steps no pointer reaches from `start`. Validation refuses them on save, but a version
    # saved before that check existed keeps them, and their counts must not vanish.
    unreached: list[Path] = field(default_factory=list)


def _branch_label(name: str, step: dict[str, Any]) -> tuple[str, int | None]:
    """The exit in the words the flat list used ("yes", a split branch's name) and its share."""
    percent = None
    if step.get("type") == "split" and name.startswith("branches["):
        index = int(name[len("branches[") : name.index("]")])
        branches = step.get("branches") or []
        if index < len(branches) and isinstance(branches[index].get("percent"), int):
            percent = branches[index]["percent"]
    return exit_label(name, step), percent


def step_tree(steps: dict[str, Any] | None, rows: Mapping[str, Any] | None = None) -> Tree:
    """The steps of a version as nested columns, each node carrying `rows[key]`."""
    listed = [s for s in (steps or {}).get("steps", []) if isinstance(s, dict) and isinstance(s.get("key"), str)]
    by_key = {s["key"]: s for s in listed}
    rows = rows or {}
    drawn: set[str] = set()

    def walk(key: str | None, entry: str) -> Path:
        path = Path()
        # A loop, not recursion, along a column: a 200-step straight series stays shallow.
        while True:
            if key is None:
                path.ends = True
                path.tail = entry
                return path
            if key in drawn or key not in by_key:
                # Drawn already (a shared step, or a loop the graph check would refuse), or a
                # pointer to no step: link to it rather than draw it twice or invent it.
                path.continues_at = key
                path.tail = entry
                return path
            drawn.add(key)
            step = by_key[key]
            node = Node(key=key, step=step, row=rows.get(key), edge_in=entry)
            path.nodes.append(node)
            kind = STEP_KINDS.get(step.get("type", ""))
            exits = kind.exits(step) if kind is not None else []
            if not exits:
                return path  # an exit step (or an unknown kind): the card itself says it ends
            if len(exits) == 1 and exits[0][0] == "next":
                key = exits[0][1]
                entry = f"{node.key}:next"
                continue
            for name, target in exits:
                label, percent = _branch_label(name, step)
                node.branches.append(
                    Branch(exit=name, label=label, percent=percent, path=walk(target, f"{node.key}:{name}"))
                )
            return path

    start = (steps or {}).get("start")
    if not isinstance(start, str) and listed:
        start = listed[0]["key"]
    root = walk(start, ":start") if listed else Path(tail=":start")
    unreached = [walk(s["key"], "") for s in listed if s["key"] not in drawn]
    return Tree(root=root, unreached=unreached)
