"""The series pages in the browser's place (Django's test client): each renders for acme with
real enrollments, viewers read and marketers change, another workspace's series, enrollment
and contact are 404, and the form keeps what was typed when the services refuse it."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.test import Client

from audiences.models import Contact
from automations.models import Enrollment, Series, SeriesStatus
from campaigns.models import EmailTemplate
from esp.models import Role, Workspace
from tests.automations.series_helpers import contact, live_series, tick, track, welcome_steps
from tests.conftest import logged_in
from tests.factories import member

pytestmark = pytest.mark.usefixtures("clock")

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def shop(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> dict[str, Any]:
    """A live welcome series: ann waits two days and gets the coupon, bob orders and converts."""
    series = live_series(
        acme, welcome_steps(templates), name="Welcome drip", goal={"event": "Order Completed"}, kind="welcome"
    )
    ann, bob = contact(acme, "ann@example.com"), contact(acme, "bob@example.com")
    track(ann, "Signed Up")
    track(bob, "Signed Up")
    clock.advance(hours=5)
    track(bob, "Order Completed", total=40)
    clock.advance(days=2)
    tick()
    return {
        "series": series,
        "ann": ann,
        "bob": bob,
        "ann_enrollment": Enrollment.objects.get(contact=ann),
        "bob_enrollment": Enrollment.objects.get(contact=bob),
    }


def _globex_series(globex: Workspace) -> tuple[Series, Enrollment, Contact]:
    template = EmailTemplate.objects.create(workspace=globex, name="Globex hello", subject="Hi", mjml="<mjml/>")
    series = live_series(globex, [{"key": "hello", "type": "send", "template": template.pk}], name="Globex series")
    person = contact(globex, "gina@globex.test")
    track(person, "Signed Up")
    return series, Enrollment.objects.get(contact=person), person


def test_series_list_shows_each_series_with_its_figures(acme_client: Client, shop: dict[str, Any]) -> None:
    page = acme_client.get("/series/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Welcome drip" in html and f'href="/series/{shop["series"].pk}/"' in html
    row = page.context["rows"][0]
    assert (row["figures"].entered_7d, row["figures"].active, row["figures"].converted_7d) == (2, 0, 1)
    assert 'href="/series/new/"' in html and 'href="/series/recipes/"' in html
    assert 'href="/series/" aria-current="page"' in html  # the main menu's entry


def test_series_page_shows_settings_steps_counts_and_enrollments(acme_client: Client, shop: dict[str, Any]) -> None:
    series = shop["series"]
    page = acme_client.get(f"/series/{series.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "When the contact does “Signed Up”" in html
    assert "Converted when the contact does “Order Completed”" in html
    assert "Everyone (no filter)" in html and "Once ever" in html and "Triggered" in html
    assert "Send “Welcome”" in html and "Wait 2 days" in html and "If did “Order Completed” since entering" in html
    steps = {row["step"].key: row["counts"] for row in page.context["steps"]}
    assert steps["welcome"].reached == 2 and steps["welcome"].sent == 2
    assert steps["pause"].reached == 2
    assert steps["ordered"].branches == {"no": 1}
    assert steps["coupon"].sent == 1
    assert "ann@example.com" in html and "bob@example.com" in html
    assert f'hx-get="/series/{series.pk}/steps/"' in html and 'hx-trigger="every 5s"' in html
    assert f'href="/series/{series.pk}/pause/"' in html and f'href="/series/{series.pk}/archive/"' in html


def test_steps_partial_refreshes_the_counts(acme_client: Client, shop: dict[str, Any]) -> None:
    page = acme_client.get(f"/series/{shop['series'].pk}/steps/", **HTMX)
    assert page.status_code == 200
    html = page.content.decode()
    assert html.lstrip().startswith("{") is False and "<html" not in html
    # Each count is a link to the people behind it.
    assert re.search(r'data-count="reached"><a href="[^"]+what=reached">2<', html)
    assert re.search(r'branch “no”</dt><dd data-count="branch"><a href="[^"]+what=branch%3Ano">1<', html)


def test_enrollments_are_paged_by_keyset(acme: Workspace, acme_client: Client, shop: dict[str, Any]) -> None:
    from automations import selectors

    series = shop["series"]
    for n in range(selectors.PAGE_SIZE):
        track(contact(acme, f"p{n}@example.com"), "Signed Up")
    first = acme_client.get(f"/series/{series.pk}/")
    older = first.context["next_before"]
    assert older is not None and f"?before={older}" in first.content.decode()
    second = acme_client.get(f"/series/{series.pk}/?before={older}")
    emails = [row["enrollment"].contact.email for row in second.context["enrollment_rows"]]
    assert emails == ["bob@example.com", "ann@example.com"]
    assert all(row["enrollment"].pk < older for row in second.context["enrollment_rows"])
    assert acme_client.get(f"/series/{series.pk}/?before=junk").status_code == 200


def test_enrollment_page_tells_the_story(acme_client: Client, shop: dict[str, Any]) -> None:
    ann = acme_client.get(f"/series/enrollments/{shop['ann_enrollment'].pk}/")
    assert ann.status_code == 200
    texts = [text for _trace, text in ann.context["lines"]]
    assert texts[0] == "entered"
    assert texts[1].startswith("sent Welcome")
    assert "wait over" in texts and "branch: no" in texts and texts[-2].startswith("sent Coupon")
    bob = acme_client.get(f"/series/enrollments/{shop['bob_enrollment'].pk}/")
    html = bob.content.decode()
    assert "converted: goal Order Completed at" in html
    assert "Converted" in html


def test_profile_loads_the_series_section_by_url(acme_client: Client, shop: dict[str, Any]) -> None:
    ann = shop["ann"]
    profile = acme_client.get(f"/audience/contacts/{ann.pk}/").content.decode()
    assert f'hx-get="/series/contacts/{ann.pk}/enrollments/"' in profile
    part = acme_client.get(f"/series/contacts/{ann.pk}/enrollments/", **HTMX)
    assert part.status_code == 200
    html = part.content.decode()
    assert "Welcome drip" in html and "sent Welcome" in html and "<html" not in html
    empty = acme_client.get(f"/series/contacts/{contact(shop['ann'].workspace, 'new@example.com').pk}/enrollments/")
    assert "Not in any series." in empty.content.decode()


def test_viewers_read_and_marketers_change(acme: Workspace, shop: dict[str, Any]) -> None:
    series = shop["series"]
    viewer = logged_in(member(acme, Role.VIEWER, email="viewer@acme.test"))
    page = viewer.get(f"/series/{series.pk}/")
    assert page.status_code == 200
    assert f'href="/series/{series.pk}/edit/"' not in page.content.decode()
    assert viewer.get("/series/").status_code == 200
    assert viewer.get(f"/series/enrollments/{shop['ann_enrollment'].pk}/").status_code == 200
    assert viewer.get(f"/series/{series.pk}/dry-run/").status_code == 200
    for url in ("/series/new/", f"/series/{series.pk}/edit/"):  # the form is readable, without a save button
        form = viewer.get(url)
        assert form.status_code == 200 and "Save series" not in form.content.decode(), url
    assert viewer.get(f"/series/{series.pk}/pause/").status_code == 403  # a confirmation is the change's first step
    for url in (
        f"/series/{series.pk}/pause/",
        f"/series/{series.pk}/archive/",
        f"/series/{series.pk}/edit/",
        "/series/recipes/",
        "/series/new/",
    ):
        assert viewer.post(url, {"recipe": "welcome", "name": "x"}).status_code == 403, url
    series.refresh_from_db()
    assert series.status == SeriesStatus.LIVE and Series.objects.filter(workspace=acme).count() == 1
    marketer = logged_in(member(acme, Role.MARKETER, email="marketer@acme.test"))
    assert marketer.post(f"/series/{series.pk}/pause/").status_code == 302
    series.refresh_from_db()
    assert series.status == SeriesStatus.PAUSED


def test_another_workspaces_objects_are_404(acme_client: Client, globex: Workspace, shop: dict[str, Any]) -> None:
    series, enrollment, person = _globex_series(globex)
    urls = [
        f"/series/{series.pk}/",
        f"/series/{series.pk}/steps/",
        f"/series/{series.pk}/edit/",
        f"/series/{series.pk}/publish/",
        f"/series/{series.pk}/pause/",
        f"/series/{series.pk}/resume/",
        f"/series/{series.pk}/archive/",
        f"/series/{series.pk}/dry-run/?email=gina@globex.test&since=2020-01-01",
        f"/series/enrollments/{enrollment.pk}/",
        f"/series/contacts/{person.pk}/enrollments/",
    ]
    for url in urls:
        assert acme_client.get(url).status_code == 404, url
        assert acme_client.post(url).status_code in (404, 405), url
    series.refresh_from_db()
    assert series.status == SeriesStatus.LIVE
    listing = acme_client.get("/series/").content.decode()
    assert "Globex series" not in listing
    # A dry run names contacts by address: globex's contact is not found in acme.
    dry = acme_client.get(f"/series/{shop['series'].pk}/dry-run/?email=gina@globex.test&since=2020-01-01", **HTMX)
    assert dry.status_code == 400 and "No contact with this address." in dry.content.decode()


def _form(templates: dict[str, EmailTemplate], **changes: Any) -> dict[str, Any]:
    data = {
        "name": "Cart rescue",
        "kind": "trigger",
        "trigger_type": "event",
        "trigger_event": "Checkout Started",
        "trigger_key": "cart_id",
        "trigger_where": "",
        "flow_filter": "",
        "goal_event": "Order Completed",
        "goal_key": "cart_id",
        "re_entry": "always",
        "priority": "20",
        "smart_sending": "on",
        "holdout_percent": "0",
        "steps": json.dumps(
            {
                "steps": [
                    {"key": "pause", "type": "wait", "amount": 1, "unit": "hours", "next": "remind"},
                    {"key": "remind", "type": "send", "template": templates["reminder"].pk},
                ]
            }
        ),
    }
    data.update(changes)
    return data


def test_new_series_form_creates_a_draft(
    acme: Workspace, acme_client: Client, templates: dict[str, EmailTemplate]
) -> None:
    assert acme_client.get("/series/new/").status_code == 200
    response = acme_client.post("/series/new/", _form(templates))
    series = Series.objects.get(workspace=acme)
    assert response.status_code == 302 and response["Location"] == f"/series/{series.pk}/builder/"
    assert series.status == SeriesStatus.DRAFT
    assert series.trigger == {"type": "event", "event": "Checkout Started", "where": [], "key": "cart_id"}
    assert series.goal == {"event": "Order Completed", "where": [], "key": "cart_id"}
    assert series.re_entry == "always" and series.smart_sending is True
    assert [s["key"] for s in series.versions.get().steps["steps"]] == ["pause", "remind"]
    page = acme_client.get(f"/series/{series.pk}/").content.decode()
    assert "This series is a draft" in page and "Wait 1 hour" in page


def test_form_errors_name_the_field_and_keep_the_input(
    acme: Workspace, acme_client: Client, templates: dict[str, EmailTemplate]
) -> None:
    steps = json.dumps(
        {
            "steps": [
                {"key": "pause", "type": "wait", "amount": -1, "unit": "hours", "next": "remind"},
                {"key": "remind", "type": "send", "template": 999999},
            ]
        }
    )
    response = acme_client.post(
        "/series/new/",
        _form(templates, steps=steps, trigger_event="", holdout_percent="80", name="Keep me"),
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert any("steps[pause].amount" in e for e in form.errors["steps"])
    assert any("steps[remind].template" in e for e in form.errors["steps"])
    assert form.errors["trigger_event"] and form.errors["holdout_percent"]
    html = response.content.decode()
    assert 'value="Keep me"' in html and "999999" in html and 'value="80"' in html
    assert not Series.objects.filter(workspace=acme).exists()

    broken = acme_client.post("/series/new/", _form(templates, steps='{"steps": [', flow_filter="{nope"))
    assert broken.status_code == 400
    assert broken.context["form"].errors["steps"] and broken.context["form"].errors["flow_filter"]
    assert "{nope" in broken.content.decode() and "{&quot;steps&quot;: [" in broken.content.decode()

    bad_rules = acme_client.post(
        "/series/new/",
        _form(templates, flow_filter=json.dumps({"match": "all", "conditions": [{"kind": "nonsense"}]})),
    )
    assert bad_rules.status_code == 400 and bad_rules.context["form"].errors["flow_filter"]


def test_list_trigger_and_other_workspaces_list_is_refused(
    acme: Workspace, acme_client: Client, globex: Workspace, templates: dict[str, EmailTemplate]
) -> None:
    from audiences.services import list_save

    own = list_save(workspace=acme, data={"name": "Newsletter"})
    theirs = list_save(workspace=globex, data={"name": "Globex list"})
    refused = acme_client.post("/series/new/", _form(templates, trigger_type="list", trigger_list=str(theirs.pk)))
    assert refused.status_code == 400 and refused.context["form"].errors["trigger_list"]
    assert "Globex list" not in refused.content.decode()
    made = acme_client.post("/series/new/", _form(templates, trigger_type="list", trigger_list=str(own.pk)))
    assert made.status_code == 302
    series = Series.objects.get(workspace=acme)
    assert series.trigger == {"type": "list", "list": own.pk}
    assert "When the contact joins the list Newsletter" in acme_client.get(f"/series/{series.pk}/").content.decode()


def test_edit_publish_and_the_draft_banner(
    acme: Workspace, acme_client: Client, templates: dict[str, EmailTemplate]
) -> None:
    acme_client.post("/series/new/", _form(templates))
    series = Series.objects.get(workspace=acme)
    confirm = acme_client.get(f"/series/{series.pk}/publish/")
    assert confirm.status_code == 200 and "The series goes live" in confirm.content.decode()
    assert acme_client.post(f"/series/{series.pk}/publish/").status_code == 302
    series.refresh_from_db()
    assert series.status == SeriesStatus.LIVE and series.live_version is not None

    edit = acme_client.get(f"/series/{series.pk}/edit/")
    assert edit.status_code == 200 and "Cart rescue" in edit.content.decode()
    # Saving the settings with the steps as they are opens no draft.
    data = {**edit.context["form"].initial, "name": "Cart rescue 2", "smart_sending": "on"}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    assert acme_client.post(f"/series/{series.pk}/edit/", data).status_code == 302
    assert series.versions.count() == 1
    assert "differs from the live version" not in acme_client.get(f"/series/{series.pk}/").content.decode()

    steps = json.loads(data["steps"])
    steps["steps"][0]["amount"] = 3
    assert acme_client.post(f"/series/{series.pk}/edit/", {**data, "steps": json.dumps(steps)}).status_code == 302
    page = acme_client.get(f"/series/{series.pk}/").content.decode()
    assert "The draft (version 2) differs from the live version 1." in page
    assert f'href="/series/{series.pk}/publish/"' in page
    assert acme_client.post(f"/series/{series.pk}/publish/", {"move_waiting": "on"}).status_code == 302
    series.refresh_from_db()
    assert series.live_version.number == 2
    assert "differs from the live version" not in acme_client.get(f"/series/{series.pk}/").content.decode()


def test_pause_resume_archive_ask_first_then_act(acme_client: Client, shop: dict[str, Any]) -> None:
    series = shop["series"]
    pause = acme_client.get(f"/series/{series.pk}/pause/")
    assert pause.status_code == 200 and "Nobody enters while the series is paused." in pause.content.decode()
    series.refresh_from_db()
    assert series.status == SeriesStatus.LIVE  # a GET changes nothing
    acme_client.post(f"/series/{series.pk}/pause/")
    series.refresh_from_db()
    assert series.status == SeriesStatus.PAUSED
    resume = acme_client.get(f"/series/{series.pk}/resume/")
    assert 'name="skip_older_than_hours"' in resume.content.decode()
    bad = acme_client.post(f"/series/{series.pk}/resume/", {"skip_older_than_hours": "-3"}, follow=True)
    series.refresh_from_db()
    assert series.status == SeriesStatus.PAUSED and bad.status_code == 200
    acme_client.post(f"/series/{series.pk}/resume/", {"skip_older_than_hours": "6"})
    series.refresh_from_db()
    assert series.status == SeriesStatus.LIVE and series.stale_before is not None
    archive = acme_client.get(f"/series/{series.pk}/archive/")
    assert archive.status_code == 200 and "0 people inside leave the series now" in archive.content.decode()
    acme_client.post(f"/series/{series.pk}/archive/")
    series.refresh_from_db()
    assert series.status == SeriesStatus.ARCHIVED
    assert "Welcome drip" not in acme_client.get("/series/").content.decode()
    assert "Welcome drip" in acme_client.get("/series/?archived=1").content.decode()


def test_an_action_that_does_not_apply_says_why(acme: Workspace, acme_client: Client) -> None:
    from automations.services import SeriesInput, series_create

    draft = series_create(workspace=acme, data=SeriesInput(name="Empty"))
    followed = acme_client.post(f"/series/{draft.pk}/pause/", follow=True)
    assert "Only a live series can be paused." in followed.content.decode()
    followed = acme_client.post(f"/series/{draft.pk}/publish/", follow=True)
    assert followed.status_code == 200
    draft.refresh_from_db()
    assert draft.status == SeriesStatus.DRAFT


def test_recipes_make_a_draft_in_one_click(acme: Workspace, acme_client: Client) -> None:
    from automations.recipes import RECIPES

    page = acme_client.get("/series/recipes/")
    assert page.status_code == 200
    for recipe in RECIPES.values():
        assert str(recipe.name) in page.content.decode()
    response = acme_client.post("/series/recipes/", {"recipe": "abandoned_cart"})
    series = Series.objects.get(workspace=acme)
    assert response.status_code == 302 and response["Location"] == f"/series/{series.pk}/"
    assert series.status == SeriesStatus.DRAFT and series.name == "Abandoned cart"
    assert acme_client.post("/series/recipes/", {"recipe": "no-such"}).status_code == 400
    assert Series.objects.filter(workspace=acme).count() == 1


def test_dry_run_on_the_series_page(acme: Workspace, acme_client: Client, shop: dict[str, Any], clock: Any) -> None:
    series = shop["series"]
    since = (clock.now() - dt.timedelta(days=5)).date().isoformat()
    result = acme_client.get(f"/series/{series.pk}/dry-run/?email=ann@example.com&since={since}&version=live", **HTMX)
    assert result.status_code == 200
    html = result.content.decode()
    assert "<html" not in html
    assert f"would send email #{shop['ann_enrollment'].version.steps['steps'][0]['template']}" in html
    assert "Conditions on attributes, lists and facts" in html
    full = acme_client.get(f"/series/{series.pk}/dry-run/?email=ann@example.com&since={since}")
    assert full.status_code == 200 and "<html" in full.content.decode() and "would send email" in full.content.decode()
    missing = acme_client.get(f"/series/{series.pk}/dry-run/?email=nobody@example.com&since={since}", **HTMX)
    assert missing.status_code == 400 and "No contact with this address." in missing.content.decode()
    bad = acme_client.get(f"/series/{series.pk}/dry-run/?email=ann@example.com&since=yesterday")
    assert bad.status_code == 400 and 'value="ann@example.com"' in bad.content.decode()


def test_pages_render_in_russian(acme: Workspace, shop: dict[str, Any]) -> None:
    reader = member(acme, Role.VIEWER, email="ru@acme.test", language="ru")
    html = logged_in(reader).get(f"/series/{shop['series'].pk}/").content.decode()
    assert "Шаги" in html and "Пробный запуск" in html


def test_the_webhook_secret_is_shown_to_marketers_and_can_be_replaced(acme: Workspace) -> None:
    from automations.services import SeriesInput, series_create

    series = series_create(
        workspace=acme,
        data=SeriesInput(
            name="Hooked",
            trigger={"type": "api"},
            steps={"steps": [{"key": "tell", "type": "webhook", "url": "https://93.184.216.34/hook"}]},
        ),
    )
    marketer = logged_in(member(acme, Role.MARKETER))
    page = marketer.get(f"/series/{series.pk}/").content.decode()
    assert series.webhook_secret in page
    viewer = logged_in(member(acme, Role.VIEWER))
    assert series.webhook_secret not in viewer.get(f"/series/{series.pk}/").content.decode()
    old = series.webhook_secret
    assert marketer.post(f"/series/{series.pk}/webhook-secret/").status_code == 302
    series.refresh_from_db()
    assert series.webhook_secret and series.webhook_secret != old


def test_series_page_draws_branches_side_by_side(
    acme: Workspace, acme_client: Client, templates: dict[str, EmailTemplate]
) -> None:
    """A condition's yes / no and a split's branches are columns of one row under their step; a
    step both branches reach is drawn once and linked from the other column."""
    welcome, coupon = templates["welcome"].pk, templates["coupon"].pk
    series = live_series(
        acme,
        [
            {
                "key": "ordered",
                "type": "condition",
                "events_since_entry": [{"event": "Order Completed"}],
                "yes": None,
                "no": "test",
            },
            {
                "key": "test",
                "type": "split",
                "branches": [
                    {"name": "Coupon", "percent": 40, "next": "coupon"},
                    {"name": "Plain", "percent": 60, "next": "remind"},
                ],
            },
            {"key": "coupon", "type": "send", "template": coupon, "next": "remind"},
            {"key": "remind", "type": "send", "template": welcome},
        ],
        name="Branchy",
    )
    track(contact(acme, "ann@example.com"), "Signed Up")
    for url in (f"/series/{series.pk}/", f"/series/{series.pk}/steps/"):
        html = acme_client.get(url).content.decode()
        assert 'id="step-trigger"' in html and "When the contact does “Signed Up”" in html
        # Each card once, however many pointers reach it.
        assert [k for k in re.findall(r'id="step-([a-z]+)"', html) if k != "trigger"] == [
            "ordered",
            "test",
            "coupon",
            "remind",
        ]
        yes = html.index('data-exit="yes"')
        no = html.index('data-exit="no"')
        assert yes < html.index('class="tree-end"') < no  # yes ends at once, no goes on to the split
        assert html.count('class="tree-branches"') == 2
        assert re.search(r"<span>Coupon</span> <small>40 %</small>", html)
        assert re.search(r"<span>Plain</span> <small>60 %</small>", html)
        plain = html[html.index('data-exit="branches[1].next"') :]
        assert re.search(r'continues at <a href="#step-remind">', plain)
        assert re.search(r'data-count="reached"><a [^>]+>1<', html)  # the counts stay on the cards
