"""Event conditions read from RecentEvent (the n-th most recent time a contact did an event)
once a workspace's rows are built: the same members as over the raw events — for the hand-
worked population of the compiler tests, for a random population against the hand-written
SQL of bench/segment.py — kept by the pipeline (idempotent under replays, identity merges
included), built by the command, and the builder's count and preview in one query."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from audiences.models import Contact, Event, PendingEvents, RecentEvent, RecentEventsBuilt
from audiences.pipeline import pending_events_process
from audiences.recent_events import RECENT_EVENT_DEPTH, recent_events_rebuild, recent_events_refresh
from audiences.segments.compiler import segment_queryset
from audiences.segments.selectors import segment_count, segment_preview
from esp.models import Workspace
from tests.audiences.test_segment_compiler import EVENTS, NOW, Population, event

pytestmark = pytest.mark.django_db


def _rules(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"match": "all", "negate": False, "conditions": list(conditions)}


def _ids(workspace: Workspace, rules: dict[str, Any], now: dt.datetime = NOW) -> set[int]:
    return set(segment_queryset(workspace=workspace, rules=rules, now=now).values_list("pk", flat=True))


def _sql(workspace: Workspace, condition: dict[str, Any]) -> str:
    return str(segment_queryset(workspace=workspace, rules=_rules(condition), now=NOW).query)


@pytest.fixture
def built(acme: Workspace, globex: Workspace) -> Population:
    people = Population(acme, globex)
    recent_events_rebuild(workspace_id=acme.pk)
    recent_events_rebuild(workspace_id=globex.pk)
    return people


@pytest.mark.parametrize(("condition", "expected"), EVENTS, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_the_same_members_as_over_the_events(built: Population, condition: dict[str, Any], expected: set[str]) -> None:
    assert built.match(condition) == expected


def test_which_conditions_read_the_table(built: Population, acme: Workspace) -> None:
    reads = [
        event(count_operator="gte", count=2, period="in_last_days", days=30),
        event("Email Opened", did=False, period="in_last_days", days=14),
        event(count_operator="eq", count=RECENT_EVENT_DEPTH - 1),
        event(count_operator="lte", count=RECENT_EVENT_DEPTH - 1),
    ]
    for condition in reads:
        sql = _sql(acme, condition)
        assert "audiences_recentevent" in sql and "audiences_event" not in sql.replace("audiences_recentevent", "")
    needs_events = [
        event(count_operator="gte", count=RECENT_EVENT_DEPTH + 1),  # deeper than kept
        event(count_operator="eq", count=RECENT_EVENT_DEPTH),  # "exactly" needs one more
        event(period="between", **{"from": "2024-06-01", "to": "2024-06-12"}),
        event(where=[{"property": "total", "operator": "gt", "value": 50}]),
    ]
    for condition in needs_events:
        assert "audiences_recentevent" not in _sql(acme, condition)


def test_not_read_until_built(acme: Workspace, globex: Workspace) -> None:
    Population(acme, globex)
    condition = event(count_operator="gte", count=2, period="in_last_days", days=30)
    RecentEventsBuilt.objects.create(workspace=acme, started_at=NOW)  # a build under way
    assert "audiences_recentevent" not in _sql(acme, condition)
    recent_events_rebuild(workspace_id=acme.pk)
    assert "audiences_recentevent" in _sql(acme, condition)
    assert "audiences_recentevent" not in _sql(globex, condition)  # another workspace's build


def test_rows_hold_the_newest_of_each_name(built: Population, acme: Workspace, globex: Workspace) -> None:
    anna = built.c["anna"]
    rows = list(
        RecentEvent.objects.filter(contact=anna).order_by("name", "nth").values_list("name", "nth", "occurred_at")
    )
    day = dt.timedelta(days=1)
    assert rows == [
        ("Email Opened", 1, NOW - 3 * day),
        ("Order Completed", 1, NOW - 5 * day),
        ("Order Completed", 2, NOW - 10 * day),
        ("Order Completed", 3, NOW - 40 * day),
    ]
    gina = Contact.objects.get(workspace=globex)
    assert RecentEvent.objects.filter(contact=gina).count() == RECENT_EVENT_DEPTH  # 5 orders, depth 5
    assert not RecentEvent.objects.filter(workspace=acme, contact=gina).exists()


# --- a random population: the table, the events and the hand-written SQL agree -------------

HAND_SQL = """
    WITH buyers AS (
        SELECT contact_id FROM audiences_event
        WHERE workspace_id = %(ws)s AND name = 'Order Completed' AND occurred_at >= %(since30)s
        GROUP BY contact_id HAVING count(*) >= 2
    )
    SELECT c.id FROM audiences_contact c JOIN buyers b ON b.contact_id = c.id
    WHERE c.workspace_id = %(ws)s AND c.country = 'DE'
      AND NOT EXISTS (
        SELECT 1 FROM audiences_event o
        WHERE o.contact_id = c.id AND o.workspace_id = %(ws)s AND o.name = 'Email Opened'
          AND o.occurred_at >= %(since14)s)
"""  # bench/segment.py's, selecting ids

BENCH_RULES = _rules(
    {"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"},
    event(count_operator="gte", count=2, period="in_last_days", days=30),
    event("Email Opened", did=False, period="in_last_days", days=14),
)


def _random_population(workspace: Workspace, seed: int) -> list[Contact]:
    rng = random.Random(seed)  # noqa: S311 — test data, seeded
    contacts = [
        Contact.objects.create(workspace=workspace, email=f"r{n}@example.com", country=rng.choice(["DE", "DE", "FR"]))
        for n in range(60)
    ]
    events = []
    for n in range(900):
        contact = rng.choice(contacts[: 10 + n % 50])  # some contacts far more active
        events.append(
            Event(
                workspace=workspace,
                contact=None if n % 40 == 0 else contact,  # a few not tied to a contact
                type="track",
                name=rng.choice(["Order Completed", "Order Completed", "Email Opened", "Product Viewed"]),
                message_id=f"r-{seed}-{n}",
                occurred_at=NOW - dt.timedelta(days=rng.uniform(0, 60)),
            )
        )
    Event.objects.bulk_create(events)
    return contacts


def test_random_population_equals_the_events_and_the_hand_written_sql(acme: Workspace) -> None:
    _random_population(acme, seed=7)
    variants = [BENCH_RULES]
    for count in range(0, RECENT_EVENT_DEPTH + 2):
        for operator in ("gte", "lte", "eq"):
            for did in (True, False):
                for period in ({"period": "ever"}, {"period": "in_last_days", "days": 20}):
                    variants.append(_rules(event(did=did, count_operator=operator, count=count, **period)))
    over_events = [_ids(acme, rules) for rules in variants]
    recent_events_rebuild(workspace_id=acme.pk)
    over_table = [_ids(acme, rules) for rules in variants]
    assert over_table == over_events
    assert "audiences_recentevent" in str(segment_queryset(workspace=acme, rules=BENCH_RULES, now=NOW).query)

    with connection.cursor() as cursor:
        cursor.execute(
            HAND_SQL,
            {"ws": acme.pk, "since30": NOW - dt.timedelta(days=30), "since14": NOW - dt.timedelta(days=14)},
        )
        hand = {row[0] for row in cursor.fetchall()}
    assert hand and over_table[0] == hand


# --- kept by the pipeline, built by the command ----------------------------------------------


def _stored(**fields: Any) -> Event:
    fields.setdefault("type", "track")
    return Event.objects.create(message_id=f"stored-{Event.objects.count()}", **fields)


def test_the_pipeline_keeps_the_rows_and_a_replay_changes_nothing(acme: Workspace) -> None:
    ann = Contact.objects.create(workspace=acme, email="ann@example.com")
    recent_events_rebuild(workspace_id=acme.pk)  # empty, but built: from now on kept
    two_recent = _rules(event(count_operator="gte", count=2, period="in_last_days", days=7))
    first = _stored(contact=ann, workspace=acme, name="Order Completed", occurred_at=NOW - dt.timedelta(days=1))
    # An anonymous visit's order, tied to ann by the identify that comes with the batch.
    anonymous = _stored(
        workspace=acme, name="Order Completed", anonymous_id="a-1", occurred_at=NOW - dt.timedelta(days=2)
    )
    identify = _stored(contact=ann, workspace=acme, type="identify", name="", anonymous_id="a-1", occurred_at=NOW)
    pending = PendingEvents.objects.create(workspace=acme, event_ids=[first.pk, anonymous.pk, identify.pk])
    pending_events_process(pending_id=pending.pk)
    anonymous.refresh_from_db()
    assert anonymous.contact_id == ann.pk
    assert _ids(acme, two_recent) == {ann.pk}
    rows = list(RecentEvent.objects.filter(contact=ann).order_by("name", "nth").values_list("name", "nth"))
    assert rows == [("Order Completed", 1), ("Order Completed", 2)]  # the identify has no name: no row

    # A replayed task, or the same contacts refreshed again: the same rows.
    recent_events_refresh(workspace_id=acme.pk, contact_ids=[ann.pk, ann.pk])
    assert list(RecentEvent.objects.filter(contact=ann).order_by("name", "nth").values_list("name", "nth")) == rows


def test_the_rebuild_command(acme: Workspace, globex: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    people = Population(acme, globex)
    call_command("recent_events_rebuild", workspace=acme.pk)
    assert "rows built" in capsys.readouterr().out
    assert RecentEventsBuilt.objects.get(workspace=acme).built_at is not None
    assert not RecentEventsBuilt.objects.filter(workspace=globex).exists()
    assert RecentEvent.objects.filter(workspace=acme).count() == 9  # anna 4, ben 2, cara 2, eve 1
    assert people.match(event(count_operator="gte", count=2, period="in_last_days", days=30)) == {"anna", "ben"}


# --- the builder: count and preview in one query ---------------------------------------------


def test_count_and_preview_in_one_query(built: Population, acme: Workspace, django_assert_num_queries: Any) -> None:
    rules = _rules(event(count_operator="gte", count=1))  # anna, ben, cara, eve
    with django_assert_num_queries(2):  # whether the table is built, then the count with the newest
        preview = segment_preview(workspace=acme, rules=rules, size=2)
    assert preview.count == 4 == segment_count(workspace=acme, rules=rules)
    assert [contact.pk for contact in preview.contacts] == sorted(_ids(acme, rules), reverse=True)[:2]
    empty = segment_preview(workspace=acme, rules=_rules(event("Never Happened")))
    assert (empty.count, empty.contacts) == (0, [])


def test_a_bulk_delete_takes_the_rows_along(built: Population, acme: Workspace) -> None:
    from audiences.bulk import contacts_bulk_apply

    ids = list(Contact.objects.filter(workspace=acme).values_list("pk", flat=True))
    assert RecentEvent.objects.filter(contact_id__in=ids).exists()
    contacts_bulk_apply(workspace=acme, contact_ids=ids, action="delete")
    assert not RecentEvent.objects.filter(contact_id__in=ids).exists()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what the commit checks: no row points at a gone contact
