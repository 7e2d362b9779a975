"""End the series here for this contact."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy

from audiences.segments.values import RuleErrors
from automations.engine.walk import RunContext, Walker
from automations.models import EnrollmentState, TraceOutcome
from automations.steps.registry import CleanContext, End, Result, StepKind, no_exit, register_step_kind


def _clean(step: dict[str, Any], ctx: CleanContext, path: str, errors: RuleErrors) -> dict[str, Any]:
    return {}


def _run(step: dict[str, Any], walkers: list[Walker], ctx: RunContext) -> dict[int, Result]:
    reason = f"exit step {step.get('name') or step['key']}"
    return {w.id: End(EnrollmentState.EXITED, TraceOutcome.EXITED, reason) for w in walkers}


EXIT = register_step_kind(
    StepKind(name="exit", label=gettext_lazy("Exit"), fields=frozenset(), clean=_clean, exits=no_exit, run=_run)
)
