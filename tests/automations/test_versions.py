"""Draft, publish, versions: the diff of two versions in words (added, removed, changed steps,
where a step now leads, which waits changed), publishing that moves the people waiting on the
waits the marketer ticks and nobody else, the publish confirmation that offers each changed wait,
and the versions page (newest first, who published when, enrollments on each, its diff), read by
viewers and closed to another workspace."""

from __future__ import annotations

import copy
import zoneinfo
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from automations import selectors
from automations.describe import Names
from automations.models import Enrollment, Series, SeriesVersion
from automations.services import SeriesInput, series_publish, series_update
from automations.versions import diff_summary, settings_of, steps_diff
from campaigns.models import EmailTemplate, Message
from esp.models import Role, User, Workspace
from tests.automations.series_helpers import contact, live_series, tick, track
from tests.conftest import logged_in
from tests.factories import member

NAMES = Names(templates={1: "Welcome", 2: "Coupon"})


def _graph(*steps: dict[str, Any], start: str | None = None) -> dict[str, Any]:
    return {"start": start or steps[0]["key"], "steps": list(steps)}


def _wait(key: str, amount: int, next_key: str | None, **extra: Any) -> dict[str, Any]:
    return {"key": key, "type": "wait", "amount": amount, "unit": "days", "next": next_key, **extra}


def _send(key: str, template: int, next_key: str | None = None) -> dict[str, Any]:
    return {"key": key, "type": "send", "template": template, "next": next_key}


# --- the diff, in words --------------------------------------------------------------------


def test_steps_added_removed_and_changed_in_words() -> None:
    old = _graph(_send("welcome", 1, "pause"), _wait("pause", 2, "mail"), _send("mail", 2))
    new = _graph(_send("welcome", 1, "pause"), _wait("pause", 1, "coupon", name="Cooling off"), _send("coupon", 2))
    diff = steps_diff(old, new, NAMES)
    assert [(v.key, v.what) for v in diff.added] == [("coupon", "Send “Coupon”")]
    assert [(v.key, v.what) for v in diff.removed] == [("mail", "Send “Coupon”")]
    [change] = diff.changed
    assert (change.key, change.label, change.name) == ("pause", "Wait", "Cooling off")
    assert change.fields == ["length"]
    assert (change.before, change.after) == ("Wait 2 days", "Wait 1 day")
    assert change.notes == [
        "named “Cooling off”",
        "then: now continues at Send “Coupon” (coupon); before, continues at Send “Coupon” (mail)",
    ]
    assert diff.changed_waits == ["pause"] and diff.start == "" and not diff.empty
    assert diff_summary(diff) == "1 step added, 1 step removed, 1 step changed"


def test_only_a_wait_whose_settings_changed_is_a_changed_wait() -> None:
    old = _graph(
        _wait("rename-only", 1, "repoint"),
        _wait("repoint", 1, "kind"),
        _wait("kind", 2, "cart"),
        {"key": "cart", "type": "wait_for_event", "event": "Order Completed", "timeout_amount": 4,
         "timeout_unit": "hours", "yes": None, "no": "nudge"},
        _send("nudge", 1),
    )  # fmt: skip
    new = _graph(
        _wait("rename-only", 1, "repoint", name="Breather"),
        _wait("repoint", 1, "cart"),
        {"key": "kind", "type": "wait_until", "time": "09:00", "next": "cart"},
        {"key": "cart", "type": "wait_for_event", "event": "Order Completed", "timeout_amount": 8,
         "timeout_unit": "hours", "yes": None, "no": "nudge"},
        _send("nudge", 2),
    )  # fmt: skip
    diff = steps_diff(old, new, NAMES)
    by_key = {change.key: change for change in diff.changed}
    assert diff.changed_waits == ["cart"]
    assert by_key["rename-only"].fields == [] and by_key["rename-only"].notes == ["named “Breather”"]
    assert by_key["repoint"].fields == []
    assert by_key["repoint"].notes == [
        "then: now continues at Wait up to 8 hours for “Order Completed” (cart); "
        "before, continues at Wait 2 days (kind)"
    ]
    assert by_key["kind"].notes[0] == "another kind of step: before Wait, now Wait until"
    assert (by_key["kind"].before, by_key["kind"].after) == ("Wait 2 days", "wait until 09:00 (contact's time)")
    assert by_key["cart"].fields == ["how long to wait"]
    assert by_key["cart"].after == "Wait up to 8 hours for “Order Completed”"
    assert by_key["nudge"].fields == ["email"] and by_key["nudge"].after == "Send “Coupon”"
    assert not diff.added and not diff.removed


def test_a_split_tells_its_percentages_from_where_its_branches_lead() -> None:
    def split(a: int, b_next: str | None) -> dict[str, Any]:
        return {"key": "ab", "type": "split", "branches": [
            {"percent": a, "next": "one", "name": "Short"}, {"percent": 100 - a, "next": b_next},
        ]}  # fmt: skip

    one, two = _send("one", 1), _send("two", 2)
    assert settings_of(split(50, "two")) == {"branches": [{"percent": 50, "name": "Short"}, {"percent": 50}]}
    percent = steps_diff(_graph(split(50, "two"), one, two), _graph(split(70, "two"), one, two), NAMES)
    assert percent.changed[0].fields == ["branches"] and percent.changed[0].notes == []
    assert percent.changed[0].after == "Random split: Short 70 %, B 30 %"
    pointer = steps_diff(_graph(split(50, "two"), one, two), _graph(split(50, None), one, two), NAMES)
    assert pointer.changed[0].fields == []
    assert pointer.changed[0].notes == ["B: now ends the series; before, continues at Send “Coupon” (two)"]
    assert pointer.changed_waits == []


def test_no_change_a_new_first_step_and_a_first_version() -> None:
    steps = _graph(_send("welcome", 1, "pause"), _wait("pause", 2, None))
    same = steps_diff(steps, steps, NAMES)
    assert same.empty and diff_summary(same) == "no change to the steps"
    moved = steps_diff(steps, _graph(_wait("pause", 2, "welcome"), _send("welcome", 1), start="pause"), NAMES)
    assert moved.start == "The series now starts at Wait 2 days (pause); before, at Send “Welcome” (welcome)"
    assert "a new first step" in diff_summary(moved)
    first = steps_diff(None, steps, NAMES)
    assert [v.key for v in first.added] == ["welcome", "pause"] and first.start == "" and not first.changed


def test_the_diff_speaks_russian() -> None:
    old = _graph(_wait("pause", 2, None))
    new = _graph(_wait("pause", 1, None, name="Пауза"), _send("coupon", 2))
    with translation.override("ru"):
        diff = steps_diff(old, new, NAMES)
        summary = diff_summary(diff)
    assert diff.changed[0].fields == ["длительность"]
    assert diff.changed[0].notes == ["получил имя «Пауза»"]
    assert summary == "добавлен 1 шаг, изменён 1 шаг"


# --- publishing moves only the people on the waits ticked -----------------------------------


def _two_waits(acme: Workspace, templates: dict[str, EmailTemplate]) -> Series:
    return live_series(
        acme,
        [
            {"key": "first", "type": "wait", "amount": 3, "unit": "days", "next": "hello"},
            {"key": "hello", "type": "send", "template": templates["welcome"].pk, "next": "second"},
            {"key": "second", "type": "wait", "amount": 5, "unit": "days", "next": "bye"},
            {"key": "bye", "type": "send", "template": templates["thanks"].pk},
        ],
        name="Two waits",
    )


def _shorten_both(acme: Workspace, series: Series, templates: dict[str, EmailTemplate]) -> None:
    """A draft whose waits are both one day; ann stands on `second`, bob on `first`."""
    assert series.live_version is not None
    steps = copy.deepcopy(series.live_version.steps)
    steps["steps"][0]["amount"] = 1
    steps["steps"][2]["amount"] = 1
    series_update(workspace=acme, series_id=series.pk, data=SeriesInput(steps=steps))


@pytest.fixture
def waiting(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> dict[str, Any]:
    series = _two_waits(acme, templates)
    ann, bob = contact(acme, "ann@example.com"), contact(acme, "bob@example.com")
    track(ann, "Signed Up")
    clock.advance(days=3)
    tick()
    track(bob, "Signed Up")
    _shorten_both(acme, series, templates)
    ann_on, bob_on = Enrollment.objects.get(contact=ann), Enrollment.objects.get(contact=bob)
    assert (ann_on.step_key, bob_on.step_key) == ("second", "first")
    return {"series": series, "ann": ann, "bob": bob, "v1": series.live_version}


def test_a_ticked_wait_moves_only_the_people_waiting_on_it(
    acme: Workspace, acme_owner: User, templates: dict[str, EmailTemplate], waiting: dict[str, Any], clock: Any
) -> None:
    series = waiting["series"]
    draft = series.versions.get(number=2)
    assert selectors.waiting_on_steps(workspace=acme, series=series, steps=draft.steps, keys=["first", "second"]) == {
        "first": 1,
        "second": 1,
    }
    published = series_publish(workspace=acme, series_id=series.pk, move_steps=["second"], user=acme_owner)
    assert published.published_by == acme_owner and published.number == 2
    assert Enrollment.objects.get(contact=waiting["ann"]).version == published
    assert Enrollment.objects.get(contact=waiting["bob"]).version == waiting["v1"]
    clock.advance(days=1, minutes=1)
    tick()
    # ann's wait is one day now and she is through it; bob still waits out his three days.
    assert [m.template_id for m in Message.objects.filter(contact=waiting["ann"]).order_by("id")] == [
        templates["welcome"].pk,
        templates["thanks"].pk,
    ]
    assert Message.objects.filter(contact=waiting["bob"]).count() == 0
    assert Enrollment.objects.get(contact=waiting["bob"]).step_key == "first"


def test_move_waiting_still_moves_everyone_on_a_kept_step(acme: Workspace, waiting: dict[str, Any]) -> None:
    published = series_publish(workspace=acme, series_id=waiting["series"].pk, move_waiting=True, move_steps=[])
    assert set(Enrollment.objects.values_list("version_id", flat=True)) == {published.pk}
    assert published.published_by is None


def test_unknown_steps_to_move_are_refused_and_nothing_is_published(acme: Workspace, waiting: dict[str, Any]) -> None:
    series = waiting["series"]
    with pytest.raises(ValidationError) as refused:
        series_publish(workspace=acme, series_id=series.pk, move_steps=["second", "nope"])
    assert refused.value.message_dict == {
        "move_steps": ["Not a step of the draft being published: nope. Name steps by their key."]
    }
    assert series.versions.get(number=2).published_at is None
    assert set(Enrollment.objects.values_list("version_id", flat=True)) == {waiting["v1"].pk}


def test_the_api_takes_the_steps_to_move(acme_api: APIClient, waiting: dict[str, Any]) -> None:
    url = f"/api/v1/series/{waiting['series'].pk}/publish"
    bad = acme_api.post(url, {"move_steps": ["nope"]}, format="json")
    assert bad.status_code == 400 and "nope" in bad.json()["error"]["fields"]["move_steps"][0]
    assert acme_api.post(url, {"move_steps": "second"}, format="json").status_code == 400  # not a list
    done = acme_api.post(url, {"move_steps": ["second"]}, format="json")
    assert done.status_code == 200 and done.json()["live_version"] == 2
    assert Enrollment.objects.get(contact=waiting["ann"]).version.number == 2
    assert Enrollment.objects.get(contact=waiting["bob"]).version.number == 1


# --- the publish confirmation --------------------------------------------------------------


def test_the_confirmation_shows_the_diff_and_a_box_per_changed_wait(
    acme_client: Client, acme_owner: User, waiting: dict[str, Any]
) -> None:
    series = waiting["series"]
    page = acme_client.get(f"/series/{series.pk}/publish/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "What changes from the live version 1" in html and "Steps changed" in html
    assert "<del>Wait 3 days</del> → <ins>Wait 1 day</ins>" in html
    assert "<del>Wait 5 days</del> → <ins>Wait 1 day</ins>" in html
    assert 'name="move_step_first"' in html and 'name="move_step_second"' in html and 'name="move_waiting"' in html
    assert "first: apply the new wait to the 1 person waiting here now" in html
    assert "Before: Wait 5 days. Now: Wait 1 day." in html
    assert acme_client.post(f"/series/{series.pk}/publish/", {"move_step_second": "on"}).status_code == 302
    assert Enrollment.objects.get(contact=waiting["ann"]).version.number == 2
    assert Enrollment.objects.get(contact=waiting["bob"]).version.number == 1
    assert series.versions.get(number=2).published_by == acme_owner


def test_a_first_publish_lists_the_steps_and_offers_no_move(
    acme: Workspace, acme_client: Client, templates: dict[str, EmailTemplate]
) -> None:
    from automations.services import series_create

    series = series_create(
        workspace=acme,
        data=SeriesInput(
            name="Fresh", trigger={"type": "api"}, steps={"steps": [_send("hi", templates["welcome"].pk)]}
        ),
    )
    html = acme_client.get(f"/series/{series.pk}/publish/").content.decode()
    assert "The steps of the first version" in html and "<ins>Send “Welcome”</ins>" in html
    assert "move_step_" not in html and 'name="move_waiting"' not in html


# --- the versions page ---------------------------------------------------------------------


@pytest.fixture
def three_versions(
    acme: Workspace, acme_owner: User, templates: dict[str, EmailTemplate], waiting: dict[str, Any], clock: Any
) -> Series:
    """v1 published by the API (no user), v2 by the owner moving ann onto it, v3 a draft."""
    series = waiting["series"]
    series_publish(workspace=acme, series_id=series.pk, move_steps=["second"], user=acme_owner)
    steps = series.versions.get(number=2).steps
    steps["steps"].append({"key": "last", "type": "send", "template": templates["coupon"].pk})
    steps["steps"][3]["next"] = "last"
    series_update(workspace=acme, series_id=series.pk, data=SeriesInput(steps=steps))
    return series


def test_the_versions_page_lists_every_version_newest_first(
    acme: Workspace, acme_client: Client, three_versions: Series
) -> None:
    acme.time_zone = "Asia/Tokyo"
    acme.save(update_fields=["time_zone"])
    series = three_versions
    page = acme_client.get(f"/series/{series.pk}/versions/")
    assert page.status_code == 200
    rows = page.context["rows"]
    assert [(r["version"].number, r["state"], r["enrollments"]) for r in rows] == [
        (3, "draft", 0),
        (2, "live", 1),
        (1, "earlier", 1),
    ]
    html = page.content.decode()
    assert html.index('id="version-3"') < html.index('id="version-2"') < html.index('id="version-1"')
    v2 = series.versions.get(number=2)
    assert v2.published_at is not None
    tokyo = v2.published_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert f'datetime="{tokyo.isoformat()}"' in html
    assert "by owner@acme.test" in html and "by the API or a user since removed" in html
    assert "Against version 2: 1 step added, 1 step changed" in html
    assert "Against version 1: 2 steps changed" in html
    assert "The first version: 4 steps" in html
    assert "then: now continues at Send “Coupon” (last); before, ends the series" in html
    assert "Not published; started" in html


def test_viewers_read_the_versions_and_the_series_page_links_them(acme: Workspace, three_versions: Series) -> None:
    viewer = logged_in(member(acme, Role.VIEWER, email="viewer@acme.test"))
    series_page = viewer.get(f"/series/{three_versions.pk}/").content.decode()
    assert f'href="/series/{three_versions.pk}/versions/"' in series_page
    assert viewer.get(f"/series/{three_versions.pk}/versions/").status_code == 200
    assert viewer.post(f"/series/{three_versions.pk}/publish/", {"move_waiting": "on"}).status_code == 403
    assert three_versions.versions.get(number=3).published_at is None


def test_another_workspaces_versions_are_a_404(acme_client: Client, globex: Workspace, three_versions: Series) -> None:
    theirs = live_series(globex, [{"key": "only", "type": "wait", "amount": 1, "unit": "days"}], name="Globex own")
    assert acme_client.get(f"/series/{theirs.pk}/versions/").status_code == 404
    globex_client = logged_in(member(globex, Role.OWNER, email="owner@globex.test"))
    assert globex_client.get(f"/series/{three_versions.pk}/versions/").status_code == 404
    assert globex_client.get(f"/series/{three_versions.pk}/publish/").status_code == 404
    own = globex_client.get(f"/series/{theirs.pk}/versions/")
    assert own.status_code == 200 and [r["version"].number for r in own.context["rows"]] == [1]
    assert "Two waits" not in own.content.decode() and "owner@acme.test" not in own.content.decode()
    assert SeriesVersion.objects.filter(series=theirs).count() == 1


def test_the_versions_page_in_russian(acme: Workspace, three_versions: Series) -> None:
    russian = logged_in(member(acme, Role.VIEWER, email="zritel@acme.test", language="ru"))
    html = russian.get(f"/series/{three_versions.pk}/versions/").content.decode()
    assert "Версия 3" in html and "черновик" in html and "действующая" in html and "прежняя" in html
    assert "По сравнению с версией 2: добавлен 1 шаг, изменён 1 шаг" in html
    assert "По сравнению с версией 1: изменено 2 шага" in html
    assert "Первая версия: 4 шага" in html and "пользователем owner@acme.test" in html
    assert "затем: теперь переход к шагу Отправить «Coupon» (last); раньше — конец цепочки" in html
