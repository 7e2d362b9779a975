"""Series steps: the registry, the graph check and the built-in kinds (imported here so that
importing the package registers them)."""

from automations.steps import (  # noqa: F401
    condition,
    exit,
    notify,
    send,
    split,
    update_contact,
    wait,
    wait_for_event,
    wait_until,
    webhook,
)
from automations.steps.registry import STEP_KINDS, CleanContext, register_step_kind

__all__ = ["STEP_KINDS", "CleanContext", "register_step_kind"]
