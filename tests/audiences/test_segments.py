"""Segments as saved objects: materialised membership with enter/exit times (full and
incremental refresh, the beat sweep, the hooks of the contact services), the pages (list,
builder with its live preview, the segment's page), the API, roles and isolation."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audiences import services as audience_services
from audiences.bulk import bulk_job_create, contacts_bulk_apply
from audiences.models import Contact, MailingList, Segment, SegmentMembership
from audiences.segments.membership import segment_refresh, segments_refresh_contacts, segments_refresh_due
from audiences.segments.selectors import event_names, segment_history, segment_members_page
from audiences.segments.services import segment_delete, segment_save
from esp.models import ApiScope, Role, Workspace
from tests.conftest import key_client, logged_in
from tests.factories import EventFactory, api_key, member

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 6, 15, 12, 0, tzinfo=dt.UTC)
GERMANS = {
    "match": "all",
    "negate": False,
    "conditions": [{"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"}],
}


def contact(workspace: Workspace, name: str, **fields: Any) -> Contact:
    return Contact.objects.create(workspace=workspace, email=f"{name}@example.com", **fields)


def members(segment: Segment) -> set[str]:
    current = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True)
    return {email.split("@")[0] for email in current.values_list("contact__email", flat=True)}


def stays(segment: Segment, name: str) -> list[tuple[dt.datetime, dt.datetime | None]]:
    rows = SegmentMembership.objects.filter(segment=segment, contact__email=f"{name}@example.com").order_by("id")
    return [(row.entered_at, row.exited_at) for row in rows]


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Callable[..., Any], run_tasks_now: None) -> Callable[..., Any]:
    """Run what was enqueued after commit, with the tasks inline."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# --- membership: full refresh, enter and exit times ----------------------------------------


def test_refresh_records_entering_and_leaving(acme: Workspace) -> None:
    anna, ben, cara = contact(acme, "anna", country="DE"), contact(acme, "ben", country="DE"), contact(acme, "cara")
    segment = segment_save(workspace=acme, name="Germans", rules=GERMANS)
    result = segment_refresh(segment_id=segment.pk, now=T0)
    assert (result.entered, result.exited, result.member_count) == (2, 0, 2)
    assert members(segment) == {"anna", "ben"}

    Contact.objects.filter(pk=ben.pk).update(country="FR")
    Contact.objects.filter(pk=cara.pk).update(country="DE")
    t1 = T0 + dt.timedelta(hours=1)
    result = segment_refresh(segment_id=segment.pk, now=t1)
    assert (result.entered, result.exited, result.member_count) == (1, 1, 2)
    assert members(segment) == {"anna", "cara"}
    assert stays(segment, "anna") == [(T0, None)]  # untouched
    assert stays(segment, "ben") == [(T0, t1)]
    assert stays(segment, "cara") == [(t1, None)]

    Contact.objects.filter(pk=ben.pk).update(country="DE")  # ben comes back: a second stay
    t2 = T0 + dt.timedelta(hours=2)
    segment_refresh(segment_id=segment.pk, now=t2)
    assert stays(segment, "ben") == [(T0, t1), (t2, None)]
    segment.refresh_from_db()
    assert (segment.member_count, segment.refreshed_at) == (3, t2)

    again = segment_refresh(segment_id=segment.pk, now=t2 + dt.timedelta(minutes=1))  # nothing changed
    assert (again.entered, again.exited) == (0, 0)
    assert SegmentMembership.objects.filter(segment=segment).count() == 4
    assert anna.pk in {m.contact_id for m in segment_members_page(segment=segment)[0]}


def test_time_alone_moves_contacts_out(acme: Workspace) -> None:
    anna = contact(acme, "anna")
    EventFactory(contact=anna, workspace=acme, name="Order Completed", occurred_at=T0 - dt.timedelta(days=1))
    rules = {"match": "all", "negate": False, "conditions": [
        {"kind": "event", "name": "Order Completed", "period": "in_last_days", "days": 7},
    ]}  # fmt: skip
    segment = segment_save(workspace=acme, name="Recent buyers", rules=rules)
    segment_refresh(segment_id=segment.pk, now=T0)
    assert members(segment) == {"anna"}
    segment_refresh(segment_id=segment.pk, now=T0 + dt.timedelta(days=7))
    assert members(segment) == set()
    assert stays(segment, "anna") == [(T0, T0 + dt.timedelta(days=7))]


def test_incremental_refresh_touches_only_the_given_contacts(acme: Workspace, globex: Workspace) -> None:
    anna, ben = contact(acme, "anna", country="DE"), contact(acme, "ben")
    germans = segment_save(workspace=acme, name="Germans", rules=GERMANS)
    vips = segment_save(
        workspace=acme, name="VIP", rules={"conditions": [{"kind": "tag", "operator": "in", "value": ["vip"]}]}
    )
    twice = {"conditions": [{"kind": "event", "name": "Order Completed", "count_operator": "gte", "count": 2}]}
    buyers = segment_save(workspace=acme, name="Buyers", rules=twice)
    for segment in (germans, vips, buyers):
        segment_refresh(segment_id=segment.pk, now=T0)
    Contact.objects.filter(pk=anna.pk).update(country="FR", tags=["vip"])
    Contact.objects.filter(pk=ben.pk).update(country="DE")
    for buyer in (anna, anna, ben, ben):
        EventFactory(contact=buyer, workspace=acme, name="Order Completed", occurred_at=T0)
    outsider = contact(globex, "gina", country="DE")

    t1 = T0 + dt.timedelta(minutes=5)
    results = segments_refresh_contacts(workspace_id=acme.pk, contact_ids=[anna.pk, outsider.pk], now=t1)
    assert {(r.segment_id, r.entered, r.exited) for r in results} == {
        (germans.pk, 0, 1),
        (vips.pk, 1, 0),
        (buyers.pk, 1, 0),
    }
    assert members(buyers) == {"anna"}  # ben's orders count once he is named
    assert members(germans) == set()  # ben changed too, but was not named
    assert members(vips) == {"anna"}
    germans.refresh_from_db()
    vips.refresh_from_db()
    assert (germans.member_count, vips.member_count) == (0, 1)
    assert germans.refreshed_at == T0  # an incremental refresh is not a full one

    segments_refresh_contacts(workspace_id=acme.pk, contact_ids=[ben.pk], now=t1)
    assert members(germans) == {"ben"} and members(buyers) == {"anna", "ben"}
    assert not SegmentMembership.objects.filter(contact=outsider).exists()
    assert segments_refresh_contacts(workspace_id=acme.pk, contact_ids=[]) == []


def test_rules_that_no_longer_hold_leave_membership_alone(acme: Workspace, marketer: Client) -> None:
    news = MailingList.objects.create(workspace=acme, name="News")
    anna = contact(acme, "anna")
    audience_services.list_save(workspace=acme, data={"name": "Other"})
    from audiences.models import Subscription

    Subscription.objects.create(workspace=acme, contact=anna, mailing_list=news, status="subscribed")
    rules = {"conditions": [{"kind": "list", "operator": "in", "list_id": news.pk, "status": "subscribed"}]}
    segment = segment_save(workspace=acme, name="News readers", rules=rules)
    segment_refresh(segment_id=segment.pk, now=T0)
    assert members(segment) == {"anna"}
    news.delete()
    assert segment_refresh(segment_id=segment.pk) is None
    assert members(segment) == {"anna"}  # not everyone "left" because a list was deleted
    page = marketer.get(f"/audience/segments/{segment.pk}/").content.decode()
    assert "These rules no longer hold" in page and "No such list in this workspace" in page


def test_beat_refreshes_what_is_due(acme: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from audiences import tasks

    sent: list[int] = []
    monkeypatch.setattr("audiences.segments.membership.enqueue_after_commit", lambda task, sid: sent.append(sid))
    static = segment_save(workspace=acme, name="Static", rules=GERMANS)
    relative = segment_save(
        workspace=acme,
        name="Relative",
        rules={"conditions": [{"kind": "event", "name": "X", "period": "in_last_days", "days": 3}]},
    )
    never = segment_save(workspace=acme, name="Never refreshed", rules=GERMANS)
    for segment in (static, relative):
        segment_refresh(segment_id=segment.pk, now=timezone.now())
    assert segments_refresh_due() == [relative.pk, never.pk]
    assert sent == [relative.pk, never.pk]
    assert segments_refresh_due(now=timezone.now() + dt.timedelta(days=2)) == [static.pk, relative.pk, never.pk]
    assert segments_refresh_due(workspace_id=acme.pk) == [static.pk, relative.pk, never.pk]
    assert tasks.refresh_segments.name == "audiences.refresh_segments"


# --- the hooks: contact changes refresh memberships after commit -----------------------------


def test_contact_changes_move_memberships(acme: Workspace, commit: Callable[..., Any]) -> None:

    news = audience_services.list_save(workspace=acme, data={"name": "News", "double_opt_in": False})
    with commit():
        germans = segment_save(workspace=acme, name="Germans", rules=GERMANS)
        vips = segment_save(
            workspace=acme, name="VIP", rules={"conditions": [{"kind": "tag", "operator": "in", "value": ["vip"]}]}
        )
        readers = segment_save(
            workspace=acme,
            name="Readers",
            rules={"conditions": [{"kind": "list", "operator": "in", "list_id": news.pk, "status": "subscribed"}]},
        )
    assert Segment.objects.filter(refreshed_at__isnull=True).count() == 0  # saving refreshed them

    with commit():
        anna, _created = audience_services.contact_save(
            workspace=acme, data={"email": "anna@example.com", "country": "DE"}
        )
    assert members(germans) == {"anna"}
    with commit():
        audience_services.contact_update(workspace=acme, contact_id=anna.pk, data={"country": "AT"})
    assert members(germans) == set()
    with commit():
        contacts_bulk_apply(workspace=acme, contact_ids=[anna.pk], action="tag", value="vip")
    assert members(vips) == {"anna"}
    context = audience_services.ConsentContext("admin")
    with commit():
        audience_services.subscription_subscribe(workspace=acme, contact=anna, mailing_list=news, context=context)
    assert members(readers) == {"anna"}
    with commit():
        audience_services.subscription_unsubscribe(workspace=acme, contact=anna, mailing_list=news, context=context)
    assert members(readers) == set()
    assert [exited is not None for _entered, exited in stays(readers, "anna")] == [True]


def test_bulk_actions_on_a_filter_refresh_the_workspace(acme: Workspace, commit: Callable[..., Any]) -> None:
    from audiences.filters import ContactFilter

    contact(acme, "anna")
    contact(acme, "ben")
    with commit():
        vips = segment_save(
            workspace=acme, name="VIP", rules={"conditions": [{"kind": "tag", "operator": "in", "value": ["vip"]}]}
        )
    with commit():
        bulk_job_create(workspace=acme, user=None, contact_filter=ContactFilter(), action="tag", value="vip")
    assert members(vips) == {"anna", "ben"}
    vips.refresh_from_db()
    assert vips.member_count == 2


def test_deleting_contacts_takes_them_off_the_counts(acme: Workspace, commit: Callable[..., Any]) -> None:

    anna, ben = contact(acme, "anna", country="DE"), contact(acme, "ben", country="DE")
    contact(acme, "cara", country="DE", tags=["keep"])
    EventFactory(contact=ben, workspace=acme, name="Order Completed")  # goes with him
    with commit():
        segment = segment_save(workspace=acme, name="Germans", rules=GERMANS)
    segment.refresh_from_db()
    assert segment.member_count == 3
    audience_services.contact_delete(workspace=acme, contact_id=anna.pk)
    segment.refresh_from_db()
    assert segment.member_count == 2
    contacts_bulk_apply(workspace=acme, contact_ids=[ben.pk], action="delete")
    connection.check_constraints()  # nothing left pointing at the deleted contacts
    segment.refresh_from_db()
    assert segment.member_count == 1 and members(segment) == {"cara"}


# --- services -------------------------------------------------------------------------------


def test_segment_save_checks_name_and_rules(acme: Workspace, globex: Workspace) -> None:
    segment_save(workspace=acme, name="Germans", rules=GERMANS)
    segment_save(workspace=globex, name="Germans", rules=GERMANS)  # names are per workspace
    with pytest.raises(ValidationError) as error:
        segment_save(
            workspace=acme,
            name=" germans ",
            rules={"conditions": [{"kind": "attribute", "field": "country", "operator": "like", "value": "D%"}]},
        )
    assert error.value.message_dict.keys() == {"name", "rules.conditions[0].operator"}
    with pytest.raises(ValidationError) as error:
        segment_save(workspace=acme, name="", rules=GERMANS)
    assert "name" in error.value.message_dict
    saved = segment_save(workspace=acme, name="Everyone", rules={})
    assert saved.rules == {"match": "all", "negate": False, "conditions": []}
    segment_delete(workspace=acme, segment_id=saved.pk)
    assert not Segment.objects.filter(pk=saved.pk).exists()


def test_event_names_for_the_builder(acme: Workspace, globex: Workspace) -> None:
    anna = contact(acme, "anna")
    for name in ("Wishlist Added", "Wishlist Added", "Zebra Seen", "Order Completed"):
        EventFactory(contact=anna, workspace=acme, name=name)
    EventFactory(contact=None, workspace=globex, name="Globex Secret")
    names = event_names(workspace=acme)
    assert {"Wishlist Added", "Zebra Seen", "Order Completed", "Checkout Started"} <= set(names)
    assert "Globex Secret" not in names and names == sorted(names)


# --- pages ----------------------------------------------------------------------------------


@pytest.fixture
def marketer(acme: Workspace) -> Client:
    return logged_in(member(acme, Role.MARKETER))


@pytest.fixture
def viewer(acme: Workspace) -> Client:
    return logged_in(member(acme, Role.VIEWER))


def test_builder_page_saves_a_segment(acme: Workspace, marketer: Client) -> None:
    page = marketer.get("/audience/segments/new/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="segment-builder"' in html and 'id="segment-schema"' in html and "segment_builder.js" in html
    assert 'hx-post="/audience/segments/preview/"' in html and "delay:400ms" in html
    schema = json.loads(html.split('id="segment-schema" type="application/json">')[1].split("</script>")[0])
    assert {k["kind"] for k in schema["kinds"]} >= {"attribute", "event", "facts", "list", "tag", "consent"}
    assert "anniversary_in_next_days" in {o["value"] for o in schema["operators"]["date"]}

    response = marketer.post(
        "/audience/segments/new/", {"name": "Germans", "description": "DE", "rules": json.dumps(GERMANS)}
    )
    segment = Segment.objects.get(workspace=acme)
    assert response.status_code == 302 and response.url == f"/audience/segments/{segment.pk}/"
    assert segment.rules == GERMANS and segment.description == "DE"

    edit = marketer.get(f"/audience/segments/{segment.pk}/edit/").content.decode()
    assert "&quot;DE&quot;" in edit and 'value="Germans"' in edit
    changed = {**GERMANS, "negate": True}
    marketer.post(f"/audience/segments/{segment.pk}/edit/", {"name": "Not Germans", "rules": json.dumps(changed)})
    segment.refresh_from_db()
    assert (segment.name, segment.rules["negate"]) == ("Not Germans", True)


def test_builder_page_shows_rule_errors(acme: Workspace, marketer: Client) -> None:
    bad = {"conditions": [{"kind": "facts", "field": "orders_count", "operator": "drop table", "value": 1}]}
    response = marketer.post("/audience/segments/new/", {"name": "Bad", "rules": json.dumps(bad)})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-path="conditions[0].operator"' in html and "Condition 1 · operator" in html
    assert "is not an operator for number fields" in html
    not_json = marketer.post("/audience/segments/new/", {"name": "Bad", "rules": "{nope"})
    assert not_json.status_code == 400 and "{nope</textarea>" in not_json.content.decode()
    assert "The rules are not valid JSON." in not_json.content.decode()
    assert not Segment.objects.exists()


def test_live_preview_counts_and_samples(acme: Workspace, globex: Workspace, marketer: Client) -> None:
    for n in range(12):
        contact(acme, f"de{n:02d}", country="DE")
    contact(acme, "fr", country="FR")
    contact(globex, "globexde", country="DE")
    html = marketer.post("/audience/segments/preview/", {"rules": json.dumps(GERMANS)}).content.decode()
    assert 'data-count="12"' in html and "de11@example.com" in html and "globexde" not in html
    assert html.count("<li>") == 10  # the newest ten
    html = marketer.post("/audience/segments/preview/", {"rules": ""}).content.decode()
    assert 'data-count="13"' in html
    bad = {"conditions": [{"kind": "attribute", "field": "email; drop table", "operator": "eq", "value": "x"}]}
    html = marketer.post("/audience/segments/preview/", {"rules": json.dumps(bad)}).content.decode()
    assert 'data-path="conditions[0].field"' in html and "is not a contact field" in html


def test_segment_page_members_history_and_refresh(acme: Workspace, marketer: Client) -> None:
    for n in range(53):
        contact(acme, f"p{n:02d}", country="DE")
    segment = segment_save(workspace=acme, name="Germans", rules=GERMANS)
    pending = marketer.get(f"/audience/segments/{segment.pk}/").content.decode()
    assert "Refreshing the members" in pending and 'hx-trigger="every 2s"' in pending
    segment_refresh(segment_id=segment.pk)
    page = marketer.get(f"/audience/segments/{segment.pk}/").content.decode()
    assert "Refreshing the members" not in page and "since the last refresh" in page
    assert 'id="segment-member-count">53<' in page
    assert "Country (ISO code) is DE" in page and "entered" in page
    assert page.count("/audience/contacts/") >= 50
    next_page = page.split('href="?before=')[1].split('"')[0]
    rest = marketer.get(f"/audience/segments/{segment.pk}/?before={next_page}").content.decode()
    rest_members = rest.split('id="members-heading"')[1].split('id="history-heading"')[0]
    assert "p00@example.com" in rest_members and "p52@example.com" not in rest_members
    assert rest_members.count("/audience/contacts/") == 3
    status = marketer.get(f"/audience/segments/{segment.pk}/?part=status", HTTP_HX_REQUEST="true")
    assert status.content.decode().lstrip().startswith("<section") and "53" in status.content.decode()

    response = marketer.post(f"/audience/segments/{segment.pk}/refresh/")
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.refreshed_at is None  # shown as refreshing until the task runs
    listing = marketer.get("/audience/segments/").content.decode()
    assert "Germans" in listing and "refreshing" in listing
    assert marketer.post(f"/audience/segments/{segment.pk}/delete/").status_code == 302
    assert not Segment.objects.exists()


def test_history_lists_entries_and_exits(acme: Workspace) -> None:
    anna = contact(acme, "anna", country="DE")
    segment = segment_save(workspace=acme, name="Germans", rules=GERMANS)
    segment_refresh(segment_id=segment.pk, now=T0)
    Contact.objects.filter(pk=anna.pk).update(country="")
    segment_refresh(segment_id=segment.pk, now=T0 + dt.timedelta(hours=1))
    history = segment_history(segment=segment)
    assert [(c.contact.email, c.entered, c.at) for c in history] == [
        ("anna@example.com", False, T0 + dt.timedelta(hours=1)),
        ("anna@example.com", True, T0),
    ]


def test_viewer_reads_but_cannot_write(acme: Workspace, viewer: Client) -> None:
    segment = segment_save(workspace=acme, name="Germans", rules=GERMANS)
    assert viewer.get("/audience/segments/").status_code == 200
    page = viewer.get(f"/audience/segments/{segment.pk}/").content.decode()
    assert "Edit rules" not in page and "Refresh now" not in page
    form = viewer.get(f"/audience/segments/{segment.pk}/edit/").content.decode()
    assert 'data-readonly="true"' in form and "segment-preview" not in form and "Save segment" not in form
    for url in (
        "/audience/segments/new/",
        "/audience/segments/preview/",
        f"/audience/segments/{segment.pk}/edit/",
        f"/audience/segments/{segment.pk}/refresh/",
        f"/audience/segments/{segment.pk}/delete/",
    ):
        assert viewer.post(url, {"name": "x", "rules": "{}"}).status_code == 403, url
    assert Segment.objects.get().name == "Germans"


def test_pages_of_another_workspace_are_404(acme: Workspace, globex: Workspace, marketer: Client) -> None:
    theirs = segment_save(workspace=globex, name="Globex only", rules=GERMANS)
    assert "Globex only" not in marketer.get("/audience/segments/").content.decode()
    for url in ("", "edit/"):
        assert marketer.get(f"/audience/segments/{theirs.pk}/{url}").status_code == 404
    for url in ("edit/", "refresh/", "delete/"):
        assert marketer.post(f"/audience/segments/{theirs.pk}/{url}", {"name": "x"}).status_code == 404
    assert Segment.objects.get(pk=theirs.pk).name == "Globex only"


# --- API ------------------------------------------------------------------------------------


def test_api_round_trip(acme: Workspace, acme_api: APIClient) -> None:
    contact(acme, "anna", country="DE")
    created = acme_api.post("/api/v1/segments", {"name": "Germans", "rules": GERMANS}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["rules"] == GERMANS and body["member_count"] == 0 and body["refreshing"] is True
    url = f"/api/v1/segments/{body['id']}"
    segment_refresh(segment_id=body["id"])
    fetched = acme_api.get(url).json()
    assert fetched["member_count"] == 1 and fetched["refreshing"] is False
    changed = acme_api.patch(url, {"description": "Customers in Germany"}, format="json").json()
    assert changed["description"] == "Customers in Germany" and changed["rules"] == GERMANS
    assert [s["name"] for s in acme_api.get("/api/v1/segments").json()["results"]] == ["Germans"]
    assert acme_api.delete(url).status_code == 204
    assert acme_api.get(url).status_code == 404


def test_api_errors_name_the_rule_path(acme_api: APIClient) -> None:
    bad = {"conditions": [{"kind": "attribute", "field": "country", "operator": "drop table", "value": "DE"}]}
    response = acme_api.post("/api/v1/segments", {"name": "Bad", "rules": bad}, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields == {
        "rules.conditions[0].operator": [
            "'drop table' is not an operator for text fields; use one of: "
            "eq, neq, contains, starts_with, in, not_in, is_set, not_set."
        ]
    }
    counted = acme_api.post("/api/v1/segments/count", {"rules": bad}, format="json")
    assert counted.status_code == 400 and "rules.conditions[0].operator" in counted.json()["error"]["fields"]
    assert acme_api.post("/api/v1/segments/count", {}, format="json").status_code == 400


def test_api_count_and_members(acme: Workspace, globex: Workspace, acme_api: APIClient) -> None:
    for n in range(5):
        contact(acme, f"de{n}", country="DE")
    contact(globex, "theirs", country="DE")
    counted = acme_api.post("/api/v1/segments/count", {"rules": GERMANS}, format="json")
    assert counted.status_code == 200 and counted.json()["count"] == 5
    segment = segment_save(workspace=acme, name="Germans", rules=GERMANS)
    segment_refresh(segment_id=segment.pk)
    page = acme_api.get(f"/api/v1/segments/{segment.pk}/members?limit=3").json()
    assert len(page["results"]) == 3 and page["next"]
    rest = acme_api.get(page["next"]).json()
    emails = [m["contact"]["email"] for m in page["results"] + rest["results"]]
    assert sorted(emails) == [f"de{n}@example.com" for n in range(5)] and rest["next"] is None
    assert "entered_at" in rest["results"][0]


def test_api_isolation_and_scopes(acme: Workspace, globex: Workspace, acme_api: APIClient) -> None:
    theirs = segment_save(workspace=globex, name="Globex only", rules=GERMANS)
    for method in ("get", "patch", "delete"):
        assert getattr(acme_api, method)(f"/api/v1/segments/{theirs.pk}", {}, format="json").status_code == 404
    assert acme_api.get(f"/api/v1/segments/{theirs.pk}/members").status_code == 404
    assert acme_api.get("/api/v1/segments").json()["results"] == []
    reader = key_client(api_key(acme, scopes=[ApiScope.CONTACTS_READ]))
    assert reader.get("/api/v1/segments").status_code == 200
    assert reader.post("/api/v1/segments", {"name": "X", "rules": {}}, format="json").status_code == 403
    assert Segment.objects.filter(workspace=acme).count() == 0
