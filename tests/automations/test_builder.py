"""The series builder's page through Django's test client: edits go to a draft (a live
version never changes), each step's problems show while the draft keeps them, publish waits
until there are none, undo puts the steps back, viewers and other workspaces change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from automations import services
from automations.models import DraftChange, Series, SeriesStatus
from campaigns.models import EmailTemplate
from esp.models import Role, Workspace
from tests.automations.series_helpers import live_series
from tests.conftest import logged_in
from tests.factories import member

pytestmark = pytest.mark.usefixtures("clock")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def cart(acme: Workspace, templates: dict[str, EmailTemplate]) -> Series:
    return live_series(
        acme,
        [
            {"key": "remind", "type": "send", "template": templates["welcome"].pk, "next": "pause"},
            {"key": "pause", "type": "wait", "amount": 2, "unit": "days", "next": None},
        ],
        name="Cart",
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
    )


def _steps(series: Series) -> dict[str, Any]:
    return series.versions.order_by("-number").first().steps  # type: ignore[union-attr]


def _post(client: Client, series: Series, **data: Any) -> Any:
    return client.post(f"/series/{series.pk}/builder/", data, **HTMX)


def test_the_builder_draws_the_tree_with_a_plus_on_every_edge(acme_client: Client, cart: Series) -> None:
    page = acme_client.get(f"/series/{cart.pk}/builder/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="builder"' in html and "Checkout Started" in html
    for edge in (":start", "remind:next", "pause:next"):
        assert f'data-edge="{edge}"' in html
    assert 'data-step="remind"' in html and "Send “Welcome”" in html


def test_insert_edits_a_new_draft_and_leaves_the_live_version(acme_client: Client, cart: Series) -> None:
    live = cart.live_version
    page = _post(acme_client, cart, op="insert", edge="remind:next", kind="wait_for_event")
    assert page.status_code == 200
    cart.refresh_from_db()
    assert cart.live_version == live and live is not None and len(live.steps["steps"]) == 2
    draft = cart.versions.order_by("-number").first()
    assert draft is not None and draft.published_at is None and draft.number == 2
    keys = {s["key"]: s for s in draft.steps["steps"]}
    assert keys["remind"]["next"] == "wait-for-1" and keys["wait-for-1"]["yes"] == "pause"
    html = page.content.decode()
    # The new step is selected, its panel open, and what it lacks is said on it.
    assert page.context["selected"]["key"] == "wait-for-1"
    assert 'id="builder-panel"' in html and "Name the event to wait for" in html
    assert 'id="publish-blocked"' in html


def test_filling_the_panel_clears_the_problem_and_publish_opens(acme_client: Client, cart: Series) -> None:
    _post(acme_client, cart, op="insert", edge="remind:next", kind="wait_for_event")
    page = _post(
        acme_client,
        cart,
        op="update",
        step="wait-for-1",
        event="Order Completed",
        key_property="cart_id",
        timeout_amount="4",
        timeout_unit="hours",
    )
    assert page.status_code == 200
    step = next(s for s in _steps(cart)["steps"] if s["key"] == "wait-for-1")
    assert step["event"] == "Order Completed" and step["key_property"] == "cart_id"
    assert (step["timeout_amount"], step["timeout_unit"], step["yes"]) == (4, "hours", "pause")
    assert not page.context["problems"] and 'id="publish-link"' in page.content.decode()
    services.series_publish(workspace=cart.workspace, series_id=cart.pk)


def test_a_typing_error_keeps_what_was_typed_and_saves_nothing(acme_client: Client, cart: Series) -> None:
    before = _steps(cart)
    page = _post(acme_client, cart, op="update", step="pause", amount="two", unit="days")
    assert page.status_code == 400
    assert 'value="two"' in page.content.decode() and "Enter a whole number" in page.content.decode()
    assert _steps(cart) == before


def test_undo_puts_the_steps_back(acme_client: Client, cart: Series) -> None:
    _post(acme_client, cart, op="insert", edge="pause:next", kind="send")
    _post(acme_client, cart, op="delete", step="remind")
    assert [s["key"] for s in _steps(cart)["steps"]] == ["pause", "email-1"]
    page = _post(acme_client, cart, op="undo")
    assert "Undone: deleted step remind" in page.content.decode()
    assert [s["key"] for s in _steps(cart)["steps"]] == ["remind", "pause", "email-1"]
    _post(acme_client, cart, op="undo")
    assert [s["key"] for s in _steps(cart)["steps"]] == ["remind", "pause"]
    assert _post(acme_client, cart, op="undo").status_code == 400


def test_a_refused_edit_says_why_and_changes_nothing(acme_client: Client, cart: Series) -> None:
    page = _post(acme_client, cart, op="insert", edge="remind:next", kind="exit")
    assert page.status_code == 400 and "only go at the end" in page.content.decode()
    page = _post(acme_client, cart, op="up", step="gone")
    assert page.status_code == 400 and "is gone" in page.content.decode()
    page = _post(acme_client, cart, op="insert", edge="nonsense", kind="wait")
    assert page.status_code == 400
    assert cart.versions.count() == 1 and not DraftChange.objects.exists()


def test_moves_and_duplicates(acme_client: Client, cart: Series) -> None:
    _post(acme_client, cart, op="down", step="remind")
    assert _steps(cart)["start"] == "pause"
    _post(acme_client, cart, op="duplicate", step="pause")
    _post(acme_client, cart, op="move", step="remind", edge=":start")
    steps = {s["key"]: s for s in _steps(cart)["steps"]}
    assert _steps(cart)["start"] == "remind" and steps["remind"]["next"] == "pause"
    assert steps["pause"]["next"] == "wait-1" and steps["wait-1"]["amount"] == 2


def test_viewers_see_the_builder_but_change_nothing(acme: Workspace, cart: Series) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    page = viewer.get(f"/series/{cart.pk}/builder/?step=pause")
    assert page.status_code == 200
    html = page.content.decode()
    assert "data-edge" not in html and 'name="op" value="up"' not in html and "<fieldset disabled" in html
    assert viewer.post(f"/series/{cart.pk}/builder/", {"op": "delete", "step": "pause"}).status_code == 403
    assert cart.versions.count() == 1


def test_another_workspace_cannot_open_or_edit(globex: Workspace, cart: Series) -> None:
    other = logged_in(member(globex, Role.OWNER))
    assert other.get(f"/series/{cart.pk}/builder/").status_code == 404
    assert other.post(f"/series/{cart.pk}/builder/", {"op": "delete", "step": "pause"}).status_code == 404


def test_the_template_picker_offers_only_this_workspace(
    acme_client: Client, cart: Series, globex: Workspace, templates: dict[str, EmailTemplate]
) -> None:
    EmailTemplate.objects.create(workspace=globex, name="Globex secret", subject="x", mjml="<mjml/>")
    html = acme_client.get(f"/series/{cart.pk}/builder/?step=remind").content.decode()
    assert "Welcome" in html and "Globex secret" not in html
    foreign = EmailTemplate.objects.get(name="Globex secret")
    page = _post(acme_client, cart, op="update", step="remind", template=str(foreign.pk))
    assert page.status_code == 400  # not one of the choices
    assert next(s for s in _steps(cart)["steps"] if s["key"] == "remind")["template"] == templates["welcome"].pk


def test_an_archived_series_cannot_be_edited(acme_client: Client, cart: Series) -> None:
    services.series_archive(workspace=cart.workspace, series_id=cart.pk)
    assert Series.objects.get(pk=cart.pk).status == SeriesStatus.ARCHIVED
    html = acme_client.get(f"/series/{cart.pk}/builder/").content.decode()
    assert "data-edge" not in html
    assert _post(acme_client, cart, op="delete", step="pause").status_code == 400


def test_the_dry_run_draws_the_contacts_path_on_the_tree(acme: Workspace, acme_client: Client, cart: Series) -> None:
    from tests.automations.series_helpers import contact, track

    person = contact(acme, "dora@example.com")
    track(person, "Checkout Started", cart_id="c1")
    page = acme_client.get(
        f"/series/{cart.pk}/builder/",
        {"dry-email": "dora@example.com", "dry-since": "2020-01-01", "dry-version": "live"},
    )
    assert page.status_code == 200
    rows = {node.key: node.row for node in page.context["tree"].root.nodes}
    assert [number for number, _line in rows["remind"]["dry"]] == [1]
    assert [number for number, _line in rows["pause"]["dry"]] == [2]
    assert 'class="dry-marks"' in page.content.decode()
    missing = acme_client.get(
        f"/series/{cart.pk}/builder/", {"dry-email": "nobody@example.com", "dry-since": "2020-01-01"}
    )
    assert missing.status_code == 200 and "No contact with this address." in missing.content.decode()


def test_a_dry_run_waits_until_the_draft_can_be_published(acme_client: Client, cart: Series) -> None:
    _post(acme_client, cart, op="insert", edge="remind:next", kind="send")
    page = acme_client.get(f"/series/{cart.pk}/builder/", {"dry-email": "x@example.com", "dry-since": "2020-01-01"})
    assert page.context["dry_run"] is None and "Fix what the steps need first" in page.content.decode()


def test_a_recipe_is_drawn_before_it_is_made(acme: Workspace, acme_client: Client) -> None:
    templates_before = EmailTemplate.objects.count()
    page = acme_client.get("/series/recipes/abandoned_cart/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Checkout Started" in html and "Cart coupon" in html and "Cart worth 100 or more?" in html
    assert 'class="tree-branch"' in html and 'data-count="reached"' not in html
    assert EmailTemplate.objects.count() == templates_before and not Series.objects.exists()
    assert acme_client.get("/series/recipes/no-such-recipe/").status_code == 404
    gallery = acme_client.get("/series/recipes/").content.decode()
    assert 'href="/series/recipes/abandoned_cart/"' in gallery


def test_each_problem_is_said_on_its_step_before_publishing(acme_client: Client, cart: Series) -> None:
    _post(acme_client, cart, op="insert", edge="pause:next", kind="send")
    _post(acme_client, cart, op="insert", edge="email-1:next", kind="split")
    _post(acme_client, cart, op="update", step="split-1", percent_0="70", percent_1="20")
    _post(acme_client, cart, op="insert", edge="split-1:branches[0].next", kind="wait_for_event")
    page = _post(acme_client, cart, op="update", step="wait-for-1", event="Order Completed", timeout_unit="days")
    problems = page.context["problems"].by_step
    assert problems["email-1"] == ["Choose the email to send."]
    assert problems["split-1"] == ["The percentages must add up to 100."]
    assert "Say how long (a whole number of days)." in problems["wait-for-1"]  # and: both branches empty
    html = page.content.decode()
    assert "Choose the email to send." in html and 'id="publish-blocked"' in html
    publish = acme_client.post(f"/series/{cart.pk}/publish/")
    assert publish.status_code == 302
    assert cart.versions.filter(published_at__isnull=True).exists()  # still a draft: publish refused it
