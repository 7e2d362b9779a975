"""The contacts page at scale: indexed substring search, the page's probe-then-index keyset,
filters by contact field and by segment (the segment compiler), and bulk actions on all
matching as a job with progress, deletion asked for first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client

from audiences import bulk, filters
from audiences.bulk import bulk_job_create, bulk_job_run, contacts_bulk_apply, deletion_summary
from audiences.exports import export_create, export_file, export_get
from audiences.filters import ContactFilter, contacts_matching, contacts_page
from audiences.models import (
    BulkJob,
    BulkJobContact,
    Contact,
    CustomField,
    Event,
    FieldType,
    JobStatus,
    MailingList,
    Subscription,
)
from audiences.segments.services import segment_save
from audiences.services import contact_save, contact_update
from campaigns.models import MessageEvent
from esp.models import Role, Workspace
from tests.conftest import logged_in
from tests.factories import EventFactory, MessageEventFactory, MessageFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(acme: Workspace) -> Client:
    return logged_in(member(acme, Role.MARKETER))


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Callable[..., Any], run_tasks_now: None) -> Callable[..., Any]:
    """Run what was enqueued after commit (the bulk job), with the tasks inline."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def add(workspace: Workspace, email: str, **fields: Any) -> Contact:
    contact, _created = contact_save(workspace=workspace, data={"email": email, **fields})
    return contact


def emails(workspace: Workspace, **data: Any) -> set[str]:
    matching = contacts_matching(workspace=workspace, contact_filter=ContactFilter.from_data(data))
    return set(matching.values_list("email", flat=True))


# --- search ---------------------------------------------------------------------------------


def test_search_finds_substrings_of_addresses_and_names_in_its_workspace(acme: Workspace, globex: Workspace) -> None:
    add(acme, "c12345@shop.example", first_name="Анна", last_name="Петрова")
    add(acme, "maria@post.example", first_name="Maria", last_name="Schmidt")
    add(acme, "x_1@shop.example")
    add(globex, "c12345@other.example", first_name="Анна", last_name="Петрова")
    assert emails(acme, q="234") == {"c12345@shop.example"}  # the middle of an address
    assert emails(acme, q="ПЕТР") == {"c12345@shop.example"}  # a name, in any case
    assert emails(acme, q="анна петрова") == {"c12345@shop.example"}  # the whole name
    assert emails(acme, q="hmid") == {"maria@post.example"}
    assert emails(acme, q="shop.ex") == {"c12345@shop.example", "x_1@shop.example"}
    assert emails(acme, q="MARIA@p") == {"maria@post.example"}  # with "@": the address's start
    assert emails(acme, q="ria@") == set()
    assert emails(acme, q="ia") == {"maria@post.example"}  # too short for trigrams: found all the same
    # LIKE's wildcards are searched for, not obeyed.
    assert emails(acme, q="x_1") == {"x_1@shop.example"} and emails(acme, q="c_2") == set()
    assert emails(acme, q="%") == set()


def test_search_follows_a_changed_name_and_address(acme: Workspace) -> None:
    # The searched text is stored with the row (lower-cased): it must follow every change.
    contact = add(acme, "old@shop.example", first_name="Otto")
    contact_update(workspace=acme, contact_id=contact.pk, data={"email": "Neu@Shop.example", "first_name": "Jörg"})
    assert emails(acme, q="jÖrg") == {"Neu@shop.example"}
    assert emails(acme, q="neu@") == {"Neu@shop.example"}
    assert emails(acme, q="otto") == set() and emails(acme, q="old@") == set()


def test_search_is_answered_by_the_trigram_index(acme: Workspace) -> None:
    add(acme, "c12345@shop.example", first_name="Анна")
    queryset = contacts_matching(workspace=acme, contact_filter=ContactFilter(q="c1234"))
    with connection.cursor() as cursor:
        # A table this small is read whole otherwise; the other indexes go (for this test's
        # transaction only) so that the plan shows whether the query's expression is the index's.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("DROP INDEX contact_unique_email, contact_workspace_recent, contact_country")
        plan = queryset.explain()
    assert "contact_search" in plan


def test_our_own_trigram_keys_hold_every_substring() -> None:
    """The keys of the embedded server's index (no pg_trgm there), checked on any server: the
    keys of a text hold the keys of each of its substrings."""
    text = "C12345@shop.example Анна Петрова"
    pieces = {text[i:j] for i in range(len(text)) for j in range(i + 3, min(i + 9, len(text)) + 1)}
    with connection.cursor() as cursor:
        for piece in sorted(pieces):
            cursor.execute("SELECT esp_search_keys(%s) @> esp_search_query_keys(%s)", [text, piece])
            assert cursor.fetchone()[0], piece
        cursor.execute("SELECT esp_search_keys(%s) @> esp_search_query_keys(%s)", [text, "петя"])
        assert cursor.fetchone()[0] is False


# --- the page: probe the newest, then the filter's own index ---------------------------------


@pytest.mark.parametrize("window", [3, 10, 1000])
def test_the_page_is_the_newest_matches_whatever_the_probe_finds(
    acme: Workspace, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    # Tagged contacts are the oldest ones: the probe of the newest finds none of them.
    made = [add(acme, f"p{n:02d}@example.com", tags=["old"] if n < 7 else []) for n in range(30)]
    monkeypatch.setattr(filters, "PROBE_WINDOW", window)
    expected = [c.pk for c in reversed(made[:7])]
    seen: list[int] = []
    before = None
    while True:
        page, before = contacts_page(workspace=acme, contact_filter=ContactFilter(tag="old"), before=before, size=3)
        seen += [c.pk for c in page]
        if before is None:
            break
    assert seen == expected
    everyone, _next = contacts_page(workspace=acme, contact_filter=ContactFilter(), before=None, size=50)
    assert [c.pk for c in everyone] == [c.pk for c in reversed(made)]


# --- filters by contact field and by segment ------------------------------------------------


def test_filters_by_a_field_and_a_custom_field(acme: Workspace, globex: Workspace) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    CustomField.objects.create(workspace=acme, key="vip", label="VIP", type=FieldType.BOOLEAN)
    add(acme, "de1@example.com", country="DE", city="Berlin", attributes={"orders": 5, "vip": True})
    add(acme, "de2@example.com", country="DE", city="München", attributes={"orders": 1})
    add(acme, "fr@example.com", country="FR", attributes={"orders": 9})
    add(globex, "de@globex.example", country="DE")
    assert emails(acme, attr="country", attr_op="eq", attr_value="de") == {"de1@example.com", "de2@example.com"}
    assert emails(acme, attr="country", attr_op="in", attr_value="FR, DE") == {
        "de1@example.com", "de2@example.com", "fr@example.com",
    }  # fmt: skip
    assert emails(acme, attr="city", attr_op="starts_with", attr_value="mün") == {"de2@example.com"}
    assert emails(acme, attr="attributes.orders", attr_op="gt", attr_value="2") == {"de1@example.com", "fr@example.com"}
    assert emails(acme, attr="attributes.vip", attr_op="eq", attr_value="yes") == {"de1@example.com"}
    assert emails(acme, attr="country", attr_op="eq", attr_value="DE", tag="", q="de2") == {"de2@example.com"}


@pytest.mark.parametrize(
    ("query", "field", "text"),
    [
        ("attr=attributes.orders&attr_op=gt&attr_value=many", "attr_value", "is not a number"),
        ("attr=attributes.orders&attr_op=starts_with&attr_value=1", "attr_op", "not an operator"),
        ("attr=password&attr_op=eq&attr_value=x", "attr", "is not a contact field"),
        ("attr=country&attr_op=eq&attr_value=", "attr_value", "Give a value"),
    ],
)
def test_a_filter_that_cannot_apply_is_a_field_error(
    acme: Workspace, marketer: Client, query: str, field: str, text: str
) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    add(acme, "a@example.com")
    response = marketer.get(f"/audience/contacts/?{query}")
    body = response.content.decode()
    assert response.status_code == 400 and text in body and 'name="ids"' not in body
    with pytest.raises(ValidationError) as error:
        filters.contact_filter_check(workspace=acme, contact_filter=ContactFilter.from_data(dict(_pairs(query))))
    assert set(error.value.message_dict) == {field}


def _pairs(query: str) -> list[tuple[str, str]]:
    return [tuple(part.split("=", 1)) for part in query.split("&")]  # type: ignore[misc]


def test_filter_by_segment_uses_its_rules_and_not_another_workspaces(
    acme: Workspace, globex: Workspace, marketer: Client
) -> None:
    anna = add(acme, "anna@example.com", country="DE")
    add(acme, "ben@example.com", country="DE")
    add(acme, "cara@example.com", country="FR")
    EventFactory(contact=anna, workspace=acme, name="Order Completed")
    buyers = segment_save(
        workspace=acme,
        name="German buyers",
        rules={
            "conditions": [
                {"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"},
                {"kind": "event", "name": "Order Completed", "count_operator": "gte", "count": 1, "period": "ever"},
            ]
        },
    )
    theirs = segment_save(workspace=globex, name="All", rules={"conditions": []})
    assert emails(acme, segment=buyers.pk) == {"anna@example.com"}
    page = marketer.get(f"/audience/contacts/?segment={buyers.pk}").content.decode()
    assert "anna@example.com" in page and "ben@example.com" not in page
    other = marketer.get(f"/audience/contacts/?segment={theirs.pk}")
    assert other.status_code == 400 and "No such segment" in other.content.decode()
    assert "anna@example.com" not in other.content.decode()


def test_export_carries_the_field_and_segment_filter(acme: Workspace, commit: Callable[..., Any]) -> None:
    add(acme, "de@example.com", country="DE")
    add(acme, "fr@example.com", country="FR")
    with commit():
        job = export_create(
            workspace=acme, user=None, filter={"attr": "country", "attr_op": "eq", "attr_value": "DE", "q": "exam"}
        )
    job = export_get(workspace=acme, job_id=job.pk)
    text = export_file(job).path.read_text(encoding="utf-8-sig")
    assert job.status == JobStatus.DONE and "de@example.com" in text and "fr@example.com" not in text
    with pytest.raises(ValidationError) as error:
        export_create(workspace=acme, user=None, filter={"attr": "country", "attr_op": "gt", "attr_value": "DE"})
    assert "attr_op" in error.value.message_dict


# --- bulk actions on all matching: a job --------------------------------------------------


def test_tagging_all_matching_is_queued_then_done_in_batches_with_progress(
    acme: Workspace, globex: Workspace, marketer: Client, commit: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "BULK_BATCH", 2)
    germans = [add(acme, f"de{n}@example.com", country="DE") for n in range(5)]
    add(acme, "fr@example.com", country="FR")
    add(globex, "de@globex.example", country="DE")
    form = {"action": "tag", "value": "promo", "target": "all", "attr": "country", "attr_op": "eq", "attr_value": "DE"}
    response = marketer.post("/audience/contacts/", form)  # not committed: the request only queued it
    job = BulkJob.objects.get()
    assert response["Location"] == f"/audience/contacts/bulk/{job.pk}/"
    assert job.status == JobStatus.QUEUED and not Contact.objects.filter(tags__contains=["promo"]).exists()
    queued = marketer.get(f"/audience/contacts/bulk/{job.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in queued  # the page polls while the job runs

    listed = marketer.get("/audience/contacts/").content.decode()
    assert f'href="/audience/contacts/bulk/{job.pk}/"' in listed and "Add tag on all matching: 0% done" in listed

    bulk_job_run(job.pk)
    job.refresh_from_db()
    assert (job.status, job.total_rows, job.processed_rows, job.changed_count) == (JobStatus.DONE, 5, 5, 5)
    assert f"/audience/contacts/bulk/{job.pk}/" not in marketer.get("/audience/contacts/").content.decode()
    assert set(Contact.objects.filter(tags__contains=["promo"]).values_list("pk", flat=True)) == {c.pk for c in germans}
    assert not BulkJobContact.objects.exists()  # the snapshot is used up
    page = marketer.get(f"/audience/contacts/bulk/{job.pk}/").content.decode()
    assert "5 of 5 contacts" in page and "every 1s" not in page and "tagged" in page


def test_the_job_acts_on_the_contacts_matched_when_it_started(acme: Workspace, commit: Callable[..., Any]) -> None:
    for n in range(4):
        add(acme, f"p{n}@example.com", tags=["promo"])
    with commit():
        job = bulk_job_create(
            workspace=acme, user=None, contact_filter=ContactFilter(tag="promo"), action="untag", value="promo"
        )
    job.refresh_from_db()
    assert job.changed_count == 4 and not Contact.objects.filter(tags__contains=["promo"]).exists()


def test_a_resumed_job_carries_on_from_its_last_batch(acme: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "BULK_BATCH", 2)
    for n in range(5):
        add(acme, f"c{n}@example.com")
    job = bulk_job_create(workspace=acme, user=None, contact_filter=ContactFilter(), action="tag", value="x")
    calls = {"n": 0}
    real_apply = bulk._apply

    def dies_on_the_second_batch(*args: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionResetError("worker killed")
        return real_apply(*args)

    monkeypatch.setattr(bulk, "_apply", dies_on_the_second_batch)
    with pytest.raises(ConnectionResetError):
        bulk._run(bulk.job_claim(BulkJob, job.pk))  # type: ignore[arg-type]
    job.refresh_from_db()
    assert (job.processed_rows, job.changed_count) == (2, 2)
    BulkJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)  # what the stalled-job sweep does
    monkeypatch.setattr(bulk, "_apply", real_apply)
    bulk_job_run(job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.changed_count) == (JobStatus.DONE, 5, 5)
    assert Contact.objects.filter(tags__contains=["x"]).count() == 5


def test_subscribe_all_matching_to_a_list(acme: Workspace, marketer: Client, commit: Callable[..., Any]) -> None:
    news = MailingList.objects.create(workspace=acme, name="News", double_opt_in=False)
    for n in range(3):
        add(acme, f"s{n}@example.com", city="Sofia")
    add(acme, "v@example.com", city="Varna")
    with commit():
        bulk_job_create(
            workspace=acme,
            user=None,
            contact_filter=ContactFilter(attr="city", attr_op="eq", attr_value="Sofia"),
            action="subscribe",
            value=str(news.pk),
        )
    assert Subscription.objects.filter(mailing_list=news, status="subscribed").count() == 3
    job = BulkJob.objects.get()
    page = marketer.get(f"/audience/contacts/bulk/{job.pk}/").content.decode()
    assert "Add to list: News" in page and "3 of 3 contacts" in page
    with commit():
        bulk_job_create(
            workspace=acme, user=None, contact_filter=ContactFilter(), action="unsubscribe", value=str(news.pk)
        )
    assert Subscription.objects.filter(mailing_list=news, status="unsubscribed").count() == 3


def test_bulk_input_errors_are_by_field(acme: Workspace, globex: Workspace, marketer: Client) -> None:
    theirs = MailingList.objects.create(workspace=globex, name="Theirs")
    with pytest.raises(ValidationError) as error:
        bulk_job_create(workspace=acme, user=None, contact_filter=ContactFilter(), action="tag", value=" ")
    assert "value" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        bulk_job_create(
            workspace=acme, user=None, contact_filter=ContactFilter(), action="subscribe", value=str(theirs.pk)
        )
    assert "list_value" in error.value.message_dict
    response = marketer.post(
        "/audience/contacts/", {"action": "tag", "value": "x", "target": "all", "attr": "nope"}, follow=True
    )
    assert response.status_code == 200 and "is not a contact field" in response.content.decode()
    assert not BulkJob.objects.exists()


# --- deleting: asked first, reported as deletions -------------------------------------------


def test_delete_all_asks_first_saying_what_goes_then_deletes_as_a_job(
    acme: Workspace, globex: Workspace, marketer: Client, commit: Callable[..., Any]
) -> None:
    anna, ben = add(acme, "anna@example.com"), add(acme, "ben@example.com")
    keep = add(globex, "anna@example.com")
    for _ in range(3):
        EventFactory(contact=anna, workspace=acme)
    EventFactory(contact=keep, workspace=globex)
    sent = MessageFactory(contact=ben, workspace=acme)
    MessageEventFactory(message=sent)

    asked = marketer.post("/audience/contacts/", {"action": "delete", "target": "all"})
    body = asked.content.decode()
    assert asked.status_code == 200 and "Delete 2 contacts?" in body and "every contact of the workspace" in body
    assert "Events (page views, orders, …): <strong>3</strong>" in body
    assert "Emails sent to them (kept in the send log, without the contact): <strong>1</strong>" in body
    assert Contact.objects.filter(workspace=acme).count() == 2 and not BulkJob.objects.exists()

    with commit():
        done = marketer.post("/audience/contacts/", {"action": "delete", "target": "all", "confirmed": "yes"})
    job = BulkJob.objects.get()
    assert done["Location"] == f"/audience/contacts/bulk/{job.pk}/"
    page = marketer.get(done["Location"]).content.decode()
    assert "2 of 2 contacts" in page and "deleted" in page
    assert not Contact.objects.filter(workspace=acme).exists() and not Event.objects.filter(workspace=acme).exists()
    connection.check_constraints()  # nothing points at a deleted contact
    sent.refresh_from_db()
    assert sent.contact_id is None and not MessageEvent.objects.filter(contact__isnull=False).exists()
    assert Contact.objects.filter(workspace=globex).count() == 1 and Event.objects.filter(workspace=globex).count() == 1


def test_deletion_counts_are_estimated_above_the_cap(acme: Workspace) -> None:
    anna = add(acme, "anna@example.com")
    for _ in range(4):
        EventFactory(contact=anna, workspace=acme)
    exact = deletion_summary(workspace=acme, contacts=Contact.objects.in_workspace(acme))
    assert exact.contacts == 1 and [(p.count, p.estimated) for p in exact.parts] == [(4, False), (0, False)]
    estimated = deletion_summary(workspace=acme, contacts=Contact.objects.in_workspace(acme), cap=2).parts[0]
    assert estimated.estimated and estimated.count >= 3  # the planner's figure, never below what was seen


def test_ticked_contacts_of_another_workspace_are_not_touched(acme: Workspace, globex: Workspace) -> None:
    theirs = add(globex, "x@example.com")
    assert contacts_bulk_apply(workspace=acme, contact_ids=[theirs.pk], action="delete") == 0
    assert contacts_bulk_apply(workspace=acme, contact_ids=[theirs.pk], action="tag", value="t") == 0
    theirs.refresh_from_db()
    assert theirs.tags == []


@pytest.mark.parametrize("query", ["segment=abc", "list=abc", "segment=%C2%B2", "list=%C2%B2"])
def test_a_list_or_segment_that_is_no_id_is_refused_not_dropped(acme: Workspace, marketer: Client, query: str) -> None:
    """Read as "no filter", a bad id would widen "all matching" (delete included) to everyone."""
    add(acme, "a@example.com")
    response = marketer.get(f"/audience/contacts/?{query}")
    assert response.status_code == 400 and "a@example.com" not in response.content.decode()
    name = query.split("=")[0]
    response = marketer.post(
        f"/audience/contacts/?{query}", {name: query.split("=")[1], "action": "delete", "target": "all"}
    )
    assert Contact.objects.filter(workspace=acme).count() == 1
    assert not BulkJob.objects.filter(workspace=acme).exists()


@pytest.mark.parametrize("query", ["before=%C2%B2", "before=" + "9" * 40])
def test_a_damaged_cursor_starts_at_the_newest(acme: Workspace, marketer: Client, query: str) -> None:
    add(acme, "a@example.com")
    response = marketer.get(f"/audience/contacts/?{query}")
    assert response.status_code == 200 and "a@example.com" in response.content.decode()


def test_ticked_ids_that_are_no_ids_are_ignored(acme: Workspace, marketer: Client) -> None:
    person = add(acme, "a@example.com")
    response = marketer.post("/audience/contacts/", {"ids": ["²", str(person.pk)], "action": "tag", "value": "x"})
    assert response.status_code in (200, 302)
    assert Contact.objects.get(pk=person.pk).tags == ["x"]


def test_a_failed_job_lets_segments_follow_and_drops_its_list(acme: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "BULK_BATCH", 2)
    for n in range(5):
        add(acme, f"c{n}@example.com")
    job = bulk_job_create(workspace=acme, user=None, contact_filter=ContactFilter(), action="tag", value="x")
    calls = {"n": 0}
    real_apply = bulk._apply

    def fails_on_the_second_batch(*args: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("a bug")
        return real_apply(*args)

    refreshed: list[int] = []
    monkeypatch.setattr(bulk, "_apply", fails_on_the_second_batch)
    monkeypatch.setattr(bulk, "segments_workspace_changed", lambda *, workspace_id: refreshed.append(workspace_id))
    bulk_job_run(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.changed_count == 2
    assert refreshed == [acme.pk]  # the two tagged contacts' segments are recounted
    assert not BulkJobContact.objects.filter(job_id=job.pk).exists()
