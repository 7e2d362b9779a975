"""Series steps: the registry, the graph check and the built-in kinds (imported here so that
importing the package registers them)."""

from automations.steps import condition, exit, send, split, wait, wait_for_event  # noqa: F401
from automations.steps.registry import STEP_KINDS, CleanContext, register_step_kind

__all__ = ["STEP_KINDS", "CleanContext", "register_step_kind"]
