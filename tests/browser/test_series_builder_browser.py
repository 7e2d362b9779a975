"""The issue's must-show: a marketer builds the abandoned-cart series from scratch in Chromium,
sees what is missing before publishing, publishes; a shop backend then drives two contacts
through it with the Segment SDK while the engine's clock moves — one converts, one gets the
reminder and the coupon, which arrive in an SMTP sink — and the tree's counts and the
contacts' traces say the same. Then the live series is edited (a wait changed, a step added)
and published again: the contact waiting inside stays on the version it entered with."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from segment.analytics import Client
from segment.analytics import request as segment_request

from automations.models import Enrollment, EnrollmentState, Series, SeriesStatus
from campaigns.providers.services import provider_create
from esp.models import Role
from tests.automations.series_helpers import send_all, tick
from tests.browser.test_flows import log_in
from tests.campaigns.test_delivery import SmtpServer, smtp  # noqa: F401 — the SMTP sink fixture
from tests.factories import EmailTemplateFactory, WorkspaceFactory, api_key, member

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("local_outbound", "run_tasks_now", "clock")]


def _swapped(page: Page, click: Any) -> None:
    """Click, and wait until htmx has drawn the builder's answer."""
    with page.expect_response(lambda r: "/builder/" in r.url):
        click()
    page.wait_for_function("() => !document.querySelector('#builder.htmx-request, #builder .htmx-request')")


def _panel_saves(page: Page) -> None:
    _swapped(page, page.locator("#builder-panel").get_by_role("button", name="Save step").click)
    expect(page.locator("#builder-panel .error")).to_have_count(0)


def _add(page: Page, edge: str, kind: str) -> None:
    """Click the "+" on an edge, then the kind of step: the new step's panel opens."""
    _swapped(page, page.locator(f'.tree-edge[data-edge="{edge}"] a').click)
    expect(page.locator("#panel-title")).to_have_text("Add a step here")
    _swapped(page, page.locator("#builder-panel").get_by_role("button", name=kind, exact=True).click)
    expect(page.locator("#builder-panel #step-form")).to_be_visible()


def _build_abandoned_cart(page: Page) -> Series:
    page.goto("/series/new/")
    page.locator("#id_name").fill("Abandoned cart")
    page.locator("#id_trigger_type").select_option("event")
    page.locator("#id_trigger_event").fill("Checkout Started")
    page.locator("#id_trigger_key").fill("cart_id")
    page.locator("#id_goal_event").fill("Order Completed")
    page.locator("#id_goal_key").fill("cart_id")
    # The reminder and the coupon go out minutes apart on purpose: no smart-sending pause.
    page.locator("#id_smart_sending").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Series saved.")
    series = Series.objects.get(name="Abandoned cart")

    # A new series opens in the builder.
    expect(page.locator("#builder")).to_be_visible()
    _add(page, ":start", "Wait")
    page.locator("#id_amount").fill("1")
    page.locator("#id_unit").select_option("hours")
    _panel_saves(page)

    _add(page, "wait-1:next", "Wait for an event")
    page.locator("#id_event").fill("Order Completed")
    page.locator("#id_key_property").fill("cart_id")
    page.locator("#id_timeout_amount").fill("4")
    page.locator("#id_timeout_unit").select_option("hours")
    _panel_saves(page)

    _add(page, "wait-for-1:no", "Send email")
    # Validation while editing: the email has no template yet, so it cannot be published.
    expect(page.locator('.builder-card[data-step="email-1"] .step-problems')).to_be_visible()
    expect(page.locator("#publish-blocked")).to_be_disabled()
    page.locator("#id_template").select_option(label="Cart reminder")
    _panel_saves(page)

    _add(page, "email-1:next", "Condition")
    page.locator("#id_entry_property").fill("total")
    page.locator("#id_entry_operator").select_option("gt")
    page.locator("#id_entry_value").fill("100")
    _panel_saves(page)

    _add(page, "if-1:yes", "Send email")
    page.locator("#id_template").select_option(label="Cart coupon")
    _panel_saves(page)
    _add(page, "if-1:no", "Send email")
    page.locator("#id_template").select_option(label="Plain reminder")
    _panel_saves(page)

    expect(page.locator(".builder-card.has-problems")).to_have_count(0)
    page.locator("#publish-link").click()
    page.locator("main form").get_by_role("button", name="Publish").click()
    expect(page.locator(".flash")).to_contain_text("Version 1 is live.")
    series.refresh_from_db()
    assert series.status == SeriesStatus.LIVE
    return series


def _sdk(live_server: Any, key: str) -> Client:
    return Client(write_key=key, host=live_server.url, sync_mode=True, max_retries=0)


def test_build_abandoned_cart_and_drive_it_with_the_sdk(
    page: Page,
    live_server: Any,
    smtp: SmtpServer,  # noqa: F811 — the fixture imported above
    clock: Any,
) -> None:
    shop = WorkspaceFactory(name="Shop", slug="shop", default_from_email="hello@shop.example")
    marketer = member(shop, Role.MARKETER, email="marketer@shop.test")
    for name in ("Cart reminder", "Cart coupon", "Plain reminder"):
        EmailTemplateFactory(workspace=shop, name=name, subject=f"{name} for {{{{ contact.first_name }}}}")
    provider_create(
        workspace=shop,
        name="Sink",
        kind="smtp",
        credentials={"host": "127.0.0.1", "port": smtp.port, "use_tls": False, "timeout": 5},
        is_default=True,
    )
    log_in(page, marketer.email)
    series = _build_abandoned_cart(page)

    sdk = _sdk(live_server, api_key(shop, scopes=["events:write"]))
    try:
        sdk.identify(user_id="ann", traits={"email": "ann@example.com", "firstName": "Ann"})
        sdk.identify(user_id="bob", traits={"email": "bob@example.com", "firstName": "Bob"})
        sdk.track(user_id="ann", event="Checkout Started", properties={"cart_id": "A1", "total": 180})
        sdk.track(user_id="bob", event="Checkout Started", properties={"cart_id": "B1", "total": 60})
        clock.advance(hours=1, minutes=1)
        tick()
        sdk.track(user_id="bob", event="Order Completed", properties={"cart_id": "B1", "total": 60})
        clock.advance(hours=4, minutes=1)
        tick()
    finally:
        segment_request._session.close()
    send_all()

    ann = Enrollment.objects.get(series=series, contact__email="ann@example.com")
    bob = Enrollment.objects.get(series=series, contact__email="bob@example.com")
    assert bob.state == EnrollmentState.CONVERTED
    assert ann.state == EnrollmentState.COMPLETED
    assert [m["Subject"] for m in smtp.to("ann@example.com")] == ["Cart reminder for Ann", "Cart coupon for Ann"]
    assert smtp.to("bob@example.com") == []

    # The tree's counts say what happened.
    page.goto(f"/series/{series.pk}/builder/")

    def card(step: str, count: str) -> Any:
        return page.locator(f'.builder-card[data-step="{step}"] [data-count="{count}"]')

    expect(card("wait-1", "reached")).to_have_text("2")
    expect(card("email-1", "sent")).to_have_text("1")
    expect(card("email-2", "sent")).to_have_text("1")
    expect(card("email-3", "sent")).to_have_text("0")
    # And so does Ann's trace, each step linking to the editor.
    page.goto(f"/series/enrollments/{ann.pk}/")
    trace = page.locator("main")
    for key in ("wait-1", "wait-for-1", "email-1", "if-1", "email-2"):
        expect(trace).to_contain_text(key)


def test_edit_a_live_series_and_the_waiting_contact_keeps_its_version(
    page: Page,
    live_server: Any,
    smtp: SmtpServer,  # noqa: F811 — the fixture imported above
    clock: Any,
) -> None:
    shop = WorkspaceFactory(name="Shop", slug="shop")
    marketer = member(shop, Role.MARKETER, email="marketer@shop.test")
    for name in ("Cart reminder", "Cart coupon", "Plain reminder"):
        EmailTemplateFactory(workspace=shop, name=name)
    log_in(page, marketer.email)
    series = _build_abandoned_cart(page)
    sdk = _sdk(live_server, api_key(shop, scopes=["events:write"]))
    try:
        sdk.identify(user_id="cat", traits={"email": "cat@example.com"})
        sdk.track(user_id="cat", event="Checkout Started", properties={"cart_id": "C1", "total": 20})
    finally:
        segment_request._session.close()
    cat = Enrollment.objects.get(series=series)
    assert (cat.step_key, cat.version.number) == ("wait-1", 1)

    page.goto(f"/series/{series.pk}/builder/?step=wait-1")
    page.locator("#id_amount").fill("3")
    _panel_saves(page)
    expect(page.locator("#builder")).to_contain_text("Draft, version 2")
    _add(page, "email-3:next", "Update contact")
    page.locator("#id_action").select_option("tag")
    page.locator("#id_tag").fill("cart-reminded")
    _panel_saves(page)
    page.locator("#publish-link").click()
    expect(page.locator("main")).to_contain_text("wait-1")  # the diff names the changed wait
    page.locator("main form").get_by_role("button", name="Publish").click()
    expect(page.locator(".flash")).to_contain_text("Version 2 is live.")

    clock.advance(hours=1, minutes=1)
    tick()
    cat.refresh_from_db()
    assert cat.version.number == 1 and cat.step_key == "wait-for-1"  # the old one-hour wait


def test_keyboard_moves_a_step_and_a_viewer_on_a_phone_reads_without_controls(new_context: Any) -> None:
    shop = WorkspaceFactory(name="Shop", slug="shop")
    marketer = member(shop, Role.MARKETER, email="marketer@shop.test")
    viewer = member(shop, Role.VIEWER, email="viewer@shop.test")
    email = EmailTemplateFactory(workspace=shop, name="Hello")
    from tests.automations.series_helpers import live_series

    series = live_series(
        shop,
        [
            {"key": "hello", "type": "send", "template": email.pk, "next": "pause"},
            {"key": "pause", "type": "wait", "amount": 1, "unit": "days", "next": "check"},
            {"key": "check", "type": "condition", "events_since_entry": [{"event": "Order Completed"}],
             "yes": None, "no": "again"},
            {"key": "again", "type": "send", "template": email.pk},
        ],
    )  # fmt: skip
    page = new_context().new_page()
    log_in(page, marketer.email)
    page.goto(f"/series/{series.pk}/builder/")
    down = page.locator('.builder-card[data-step="hello"] button[value="down"]')
    down.focus()
    _swapped(page, lambda: page.keyboard.press("Enter"))
    assert Series.objects.get(pk=series.pk).versions.order_by("-number").first().steps["start"] == "pause"
    # The focus stays on the moved card's button, so the next Enter moves it again.
    expect(page.locator('.builder-card[data-step="hello"] button[value="down"]')).to_be_focused()

    phone = new_context()
    reader = phone.new_page()
    reader.set_viewport_size({"width": 390, "height": 800})
    log_in(reader, viewer.email)
    reader.goto(f"/series/{series.pk}/builder/")
    expect(reader.locator('.builder-card[data-step="check"]')).to_be_visible()
    expect(reader.locator(".tree-edge")).to_have_count(0)
    expect(reader.locator('button[value="down"]')).to_have_count(0)
    assert reader.evaluate("document.documentElement.scrollWidth") <= 390


def test_trigger_filters_are_rows_not_json(page: Page) -> None:
    shop = WorkspaceFactory(name="Shop", slug="shop")
    marketer = member(shop, Role.MARKETER, email="marketer@shop.test")
    log_in(page, marketer.email)
    page.goto("/series/new/")
    page.locator("#id_name").fill("Big carts")
    page.locator("#id_trigger_type").select_option("event")
    page.locator("#id_trigger_event").fill("Checkout Started")
    page.locator("#trigger-fields .filter-add").click()
    row = page.locator("#trigger-fields .filter-row").last
    row.locator("input").first.fill("total")
    row.locator("select").select_option("gte")
    row.locator("input").nth(1).fill("100")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#builder")).to_be_visible()
    series = Series.objects.get(name="Big carts")
    assert series.trigger["where"] == [{"property": "total", "operator": "gte", "value": 100}]
