"""A dry run replays a contact's real history against a series and writes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from automations.dry_run import series_dry_run
from automations.models import Enrollment, Trace
from campaigns.models import EmailTemplate, Message
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series
from tests.factories import EventFactory

pytestmark = pytest.mark.usefixtures("clock")


def test_two_carts_replayed_one_ordered(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> None:
    series = live_series(
        acme,
        [
            {
                "key": "wait-order",
                "type": "wait_for_event",
                "event": "Order Completed",
                "key_property": "cart_id",
                "timeout_amount": 1,
                "timeout_unit": "hours",
                "yes": None,
                "no": "remind",
            },
            {"key": "remind", "type": "send", "template": templates["reminder"].pk},
        ],
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
        goal={"event": "Order Completed", "key": "cart_id"},
        re_entry="always",
    )
    kim = contact(acme, "kim@example.com")
    start = clock.now() - dt.timedelta(days=2)
    EventFactory(contact=kim, workspace=acme, name="Checkout Started", properties={"cart_id": "A"}, occurred_at=start)
    EventFactory(contact=kim, workspace=acme, name="Checkout Started", properties={"cart_id": "B"},
                 occurred_at=start + dt.timedelta(minutes=5))  # fmt: skip
    EventFactory(contact=kim, workspace=acme, name="Order Completed", properties={"cart_id": "A"},
                 occurred_at=start + dt.timedelta(minutes=30))  # fmt: skip

    run = series_dry_run(workspace=acme, series=series, contact=kim, since=start - dt.timedelta(hours=1))

    by_entry: dict[str, list[str]] = {}
    for line in run.lines:
        by_entry.setdefault(line.entry, []).append(line.what)
    assert by_entry["#1 (cart_id A)"] == ["entered", "branch: yes", "completed"]
    assert by_entry["#2 (cart_id B)"] == [
        "entered",
        "branch: no",
        f"would send email #{templates['reminder'].pk}",
        "completed",
    ]
    assert not Enrollment.objects.exists() and not Trace.objects.exists() and not Message.objects.exists()
