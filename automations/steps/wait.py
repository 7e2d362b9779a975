"""Wait a while: minutes, hours or days from the moment the step is reached."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy

from audiences.segments.values import RuleErrors
from automations.engine.walk import RunContext, Walker
from automations.models import TraceOutcome
from automations.steps.common import clean_duration, duration
from automations.steps.registry import CleanContext, Go, Result, StepKind, Wait, next_exit, register_step_kind


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    return clean_duration(step, path, errors)


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    results: dict[int, Result] = {}
    length = duration(step)
    for walker in walkers:
        started = walker.step_started_at or ctx.now
        if walker.waiting or started + length <= ctx.now:
            if started + length <= ctx.now:
                results[walker.id] = Go(step.get("next"), TraceOutcome.WAITED)
            else:  # woken early (a version change moved the wait): wait out the rest
                results[walker.id] = Wait(started + length, trace=False)
        else:
            results[walker.id] = Wait(started + length, f"until {(started + length):%Y-%m-%d %H:%M} UTC")
    return results


WAIT = register_step_kind(
    StepKind(
        name="wait",
        label=gettext_lazy("Wait"),
        fields=frozenset({"amount", "unit"}),
        clean=_clean,
        exits=next_exit,
        run=_run,
        waits=True,
    )
)
