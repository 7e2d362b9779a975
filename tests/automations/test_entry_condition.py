"""A condition on the entry's data (the trigger event's properties, Klaviyo's "trigger split"):
a cart over 100 takes "yes", the others "no"; the panel types what the marketer writes."""

from __future__ import annotations

from typing import Any

import pytest

from automations.describe import Names, step_views
from automations.step_forms import ConditionForm, property_value
from campaigns.models import EmailTemplate
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series, outcomes, track

pytestmark = pytest.mark.usefixtures("clock")


def test_the_entry_decides_the_branch(acme: Workspace, templates: dict[str, EmailTemplate]) -> None:
    live_series(
        acme,
        [
            {"key": "big", "type": "condition", "entry_where": [{"property": "total", "operator": "gt", "value": 100}],
             "yes": "coupon", "no": "plain"},
            {"key": "coupon", "type": "send", "template": templates["coupon"].pk},
            {"key": "plain", "type": "send", "template": templates["welcome"].pk},
        ],
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
    )  # fmt: skip
    rich, modest = contact(acme, "rich@example.com"), contact(acme, "modest@example.com")
    track(rich, "Checkout Started", cart_id="a", total=250)
    track(modest, "Checkout Started", cart_id="b", total=40)
    assert ("big", "branched", "yes") in outcomes(rich.enrollments.get())
    assert ("big", "branched", "no") in outcomes(modest.enrollments.get())


def test_the_condition_reads_as_words() -> None:
    step = {"key": "big", "type": "condition", "entry_where": [{"property": "total", "operator": "gt", "value": 100}]}
    assert "the entry has total" in step_views({"steps": [step]}, Names(), None)[0].what


@pytest.mark.parametrize(
    ("operator", "raw", "value"),
    [("gt", "100", 100), ("gt", "99.5", 99.5), ("gt", "lots", "lots"), ("eq", "EUR", "EUR"),
     ("in", "a, b,", ["a", "b"]), ("between", "1,5", [1, 5]), ("is_set", "x", None)],
)  # fmt: skip
def test_typed_values(operator: str, raw: str, value: Any) -> None:
    assert property_value(operator, raw) == value


def test_the_form_keeps_further_filters_set_through_the_api() -> None:
    step = {
        "key": "big",
        "type": "condition",
        "entry_where": [
            {"property": "total", "operator": "gt", "value": 100},
            {"property": "currency", "operator": "eq", "value": "EUR"},
        ],
    }
    form = ConditionForm(
        {"entry_property": "total", "entry_operator": "gte", "entry_value": "150", "email_action": "opened"}, step=step
    )
    assert form.is_valid(), form.errors
    assert form.settings()["entry_where"] == [
        {"property": "total", "operator": "gte", "value": 150},
        {"property": "currency", "operator": "eq", "value": "EUR"},
    ]
