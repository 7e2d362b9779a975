"""The eight starter templates: each compiles, renders with nothing and with sample data, and
can be copied into a workspace."""

from __future__ import annotations

import pytest

from campaigns.content import services
from campaigns.content.rendering import email_context, render_email
from campaigns.content.starters import SAMPLE_CONTACT, SAMPLE_EVENTS, SAMPLE_RECOMMENDATIONS, STARTERS
from esp.models import Workspace

pytestmark = pytest.mark.django_db

URLS = {"unsubscribe_url": "https://esp.test/u", "preferences_url": "https://esp.test/p", "view_in_browser_url": ""}


def test_there_are_the_eight_starters() -> None:
    assert set(STARTERS) == {
        "welcome", "abandoned_cart", "browse_abandonment", "order_thank_you", "replenishment", "win_back",
        "birthday", "promo",
    }  # fmt: skip


@pytest.mark.parametrize("key", sorted(STARTERS))
def test_starter_copies_compiles_and_renders(acme: Workspace, key: str) -> None:
    starter = STARTERS[key]
    template = services.template_copy_starter(workspace=acme, starter_key=key)
    assert template.name == starter.name and template.starter == key and template.version == 1
    assert template.compiled_html.startswith("<!doctype html>")

    # With nothing known about the person or the event, every fallback holds.
    empty = render_email(template, email_context(workspace=acme, contact={}, event={}, urls=URLS))
    assert empty.subject and "{{" not in empty.subject and "{{" not in empty.html and "{%" not in empty.html
    assert "None" not in empty.text
    assert "https://esp.test/u" in empty.html and "1 Market Street, Springfield" in empty.html

    # With the sample person and the sample event of its kind.
    sample = SAMPLE_EVENTS.get(starter.sample_event)
    context = email_context(
        workspace=acme, contact=dict(SAMPLE_CONTACT), event=dict(sample.properties) if sample else {}, urls=URLS
    )
    context["recommended_products"] = SAMPLE_RECOMMENDATIONS
    full = render_email(template, context)
    assert "Alex" in full.subject + full.html
    assert "there" not in full.subject
    if sample and "products" in sample.properties:
        assert "Trail running shoes" in full.html
    if "recommended_products" in starter.mjml:
        assert "Hydration vest" in full.html
    assert len(full.html) < 102_000  # Gmail clips larger messages


def test_copying_twice_gives_a_free_name(acme: Workspace) -> None:
    first = services.template_copy_starter(workspace=acme, starter_key="welcome")
    second = services.template_copy_starter(workspace=acme, starter_key="welcome")
    assert (first.name, second.name) == ("Welcome", "Welcome (2)")


def test_a_free_name_fits_the_column_however_long_the_name(acme: Workspace) -> None:
    long_name = "Весенняя распродажа " * 10  # 200 characters
    first = services.template_copy_starter(workspace=acme, starter_key="welcome", name=long_name)
    second = services.template_copy_starter(workspace=acme, starter_key="welcome", name=long_name)
    third = services.template_copy_starter(workspace=acme, starter_key="welcome", name=long_name + "and more")
    assert first.name == long_name.strip()
    assert second.name == long_name[:196] + " (2)"  # cut to fit the 200 characters of the column
    assert third.name == long_name[:196] + " (3)"
