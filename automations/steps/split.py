"""Random split by percentages: an A/B test inside a series. The draw is a hash of the
enrollment, so a re-run of the step takes the same branch and the branch counts are the test's
result."""

from __future__ import annotations

import hashlib
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audiences.segments.values import RuleErrors
from automations.engine.walk import RunContext, Walker
from automations.models import TraceOutcome
from automations.steps.registry import CleanContext, Go, Result, StepKind, register_step_kind

MAX_BRANCHES = 5


def _exits(step: dict[str, Any]) -> list[tuple[str, str | None]]:
    branches = step.get("branches")
    if not isinstance(branches, list):
        return []
    return [(f"branches[{i}].next", b.get("next") if isinstance(b, dict) else None) for i, b in enumerate(branches)]


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    branches = step.get("branches")
    if not isinstance(branches, list) or not 2 <= len(branches) <= MAX_BRANCHES:
        errors.add(f"{path}.branches", _("Expected 2 to %(max)d branches.") % {"max": MAX_BRANCHES})
        return {}
    cleaned: list[dict[str, Any]] = []
    for index, branch in enumerate(branches):
        branch_path = f"{path}.branches[{index}]"
        if not isinstance(branch, dict):
            errors.add(branch_path, _('Expected {"percent": …, "next": …}.'))
            continue
        for unknown in sorted(set(branch) - {"percent", "next", "name"}):
            errors.add(f"{branch_path}.{unknown}", _("Unknown field %(field)r.") % {"field": unknown})
        percent = branch.get("percent")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            errors.add(f"{branch_path}.percent", _("Expected a whole percentage from 0 to 100."))
            continue
        cleaned.append(
            {
                "percent": percent,
                "next": branch.get("next"),
                **({"name": str(branch["name"])[:60]} if branch.get("name") else {}),
            }
        )
    if len(cleaned) == len(branches) and sum(b["percent"] for b in cleaned) != 100:
        errors.add(f"{path}.branches", _("The percentages must add up to 100."))
    return {"branches": cleaned}


def _draw(enrollment_id: int, key: str) -> int:
    digest = hashlib.blake2b(f"{enrollment_id}:{key}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % 100


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    results: dict[int, Result] = {}
    for walker in walkers:
        draw, edge = _draw(walker.id, step["key"]), 0
        for index, branch in enumerate(step["branches"]):
            edge += branch["percent"]
            if draw < edge:
                label = branch.get("name") or chr(ord("A") + index)
                results[walker.id] = Go(branch["next"], TraceOutcome.BRANCHED, "", f"{label}"[:32])
                break
    return results


SPLIT = register_step_kind(
    StepKind(
        name="split",
        label=gettext_lazy("Random split"),
        fields=frozenset({"branches"}),
        clean=_clean,
        exits=_exits,
        run=_run,
    )
)
