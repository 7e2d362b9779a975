"""The RFM and lifecycle pages in Chromium: the grid's cells are coloured by their share and a
click on one opens its segment; the scoring button queues a run the page reports; the
lifecycle chart draws and the thresholds are saved."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from audiences.facts import insight_figures_refresh, rfm_score
from audiences.models import CustomerFacts, LifecycleSettings, Segment
from audiences.services import contact_save
from esp.models import Role
from tests.browser.test_flows import log_in
from tests.factories import WorkspaceFactory, member

pytestmark = pytest.mark.browser


def _customers(workspace: object, count: int) -> None:
    now = timezone.now()
    for n in range(count):
        contact, _ = contact_save(workspace=workspace, data={"email": f"c{n}@example.com"})  # type: ignore[arg-type]
        CustomerFacts.objects.create(
            contact=contact,
            workspace=workspace,
            orders_count=1 + n % 4,
            revenue=Decimal(10 * (n + 1)),
            last_order_at=now - timedelta(days=3 * n + 1),
            lifecycle_stage=("first_time", "repeat", "loyal", "at_risk")[n % 4],
        )


def test_marketer_opens_a_grid_cell_as_a_segment(page: Page) -> None:
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    _customers(workspace, 20)
    rfm_score(workspace_id=workspace.pk)
    insight_figures_refresh(workspace_id=workspace.pk)
    user = member(workspace, Role.MARKETER, email="marketer@acme.test")

    log_in(page, user.email)
    page.goto("/audience/rfm/")
    # The 4 most recent customers have 1, 2, 3 and 4 orders; 4 orders is the best value, but
    # 5 customers share it across the 4th and 5th quintile, so they all score 4 (the lower).
    top = page.locator('td.rfm-cell[data-recency="5"][data-frequency="4"]')
    expect(top.locator(".rfm-count")).to_have_text("1")
    empty = page.locator('td.rfm-cell[data-recency="5"][data-frequency="5"]')
    expect(empty.locator(".rfm-count")).to_have_text("0")
    # Cells with customers are tinted, empty ones are not.
    tint = top.evaluate("cell => getComputedStyle(cell).backgroundColor")
    assert tint != empty.evaluate("cell => getComputedStyle(cell).backgroundColor")

    page.get_by_role("button", name="Score now").click()
    expect(page.locator("#scoring-status")).to_contain_text("Scoring is queued")
    expect(page.get_by_role("button", name="Score now")).to_be_disabled()

    top.locator("button").click()
    expect(page).to_have_url(f"/audience/segments/{Segment.objects.get(workspace=workspace).pk}/")
    expect(page.locator("h1")).to_contain_text("RFM recency 5 · frequency 4")


def test_lifecycle_chart_and_thresholds(page: Page) -> None:
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    _customers(workspace, 8)
    insight_figures_refresh(workspace_id=workspace.pk)
    user = member(workspace, Role.OWNER, email="owner@acme.test")

    log_in(page, user.email)
    page.goto("/audience/lifecycle/")
    expect(page.locator('#lifecycle-counts tr[data-stage="loyal"] td').nth(1)).to_have_text("2")
    # Chart.js drew something on the canvas (its pixels are no longer all transparent).
    page.wait_for_function(
        """() => { const c = document.getElementById("lifecycle-chart");
                   return c && c.getContext("2d").getImageData(0, 0, c.width, c.height).data.some(v => v !== 0); }"""
    )
    page.get_by_label("At risk after days without an order").fill("20")
    page.get_by_role("button", name="Save thresholds").click()
    expect(page.locator(".flash")).to_contain_text("Thresholds saved")
    expect(page.locator("main")).to_contain_text("at risk after 20 days without an order, lapsed after 40 days")
    assert LifecycleSettings.objects.get(workspace=workspace).at_risk_after_days == 20
