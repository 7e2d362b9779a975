"""Every recipe builds a series whose steps pass the same check as any series, and publishes."""

from __future__ import annotations

import pytest

from automations.models import SeriesStatus
from automations.recipes import RECIPES, series_from_recipe
from automations.services import series_publish
from esp.models import Workspace


@pytest.mark.parametrize("key", sorted(RECIPES))
def test_recipe_makes_a_publishable_series(acme: Workspace, key: str) -> None:
    series = series_from_recipe(workspace=acme, recipe_key=key)
    assert series.status == SeriesStatus.DRAFT
    series_publish(workspace=acme, series_id=series.pk)
    series.refresh_from_db()
    assert series.status == SeriesStatus.LIVE
    assert series.live_version is not None and series.live_version.steps["steps"]
