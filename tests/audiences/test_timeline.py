"""A contact's timeline, the event explorer and the events read API: newest first by when the
event happened (late events in their place), keyset pages without gaps or duplicates, every
filter, the index each query runs on, isolation between workspaces, and the viewer's reads."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audiences.events import selectors as event_selectors
from audiences.events.selectors import EventCursor, EventFilters, contact_timeline, event_names, events_page
from audiences.models import Contact, Event
from audiences.services import contact_save
from esp.models import ApiScope, Role, Workspace
from tests.conftest import key_client, logged_in
from tests.factories import api_key, member

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_message_ids = itertools.count()


def event(
    workspace: Workspace,
    contact: Contact | None,
    name: str,
    at: datetime,
    *,
    type: str = "track",
    received: datetime | None = None,
    properties: dict[str, Any] | None = None,
    **fields: Any,
) -> Event:
    return Event.objects.create(
        workspace=workspace,
        contact=contact,
        type=type,
        name=name,
        properties=properties or {},
        message_id=f"m-{next(_message_ids)}",
        occurred_at=at,
        received_at=received or at + timedelta(seconds=2),
        **fields,
    )


def person(workspace: Workspace, email: str) -> Contact:
    return contact_save(workspace=workspace, data={"email": email})[0]


def all_pages(fetch: Any) -> list[int]:
    """Walk a keyset-paginated read to its end; `fetch(cursor)` returns (ids, next cursor)."""
    seen: list[int] = []
    cursor = None
    for _ in range(100):
        ids, cursor = fetch(cursor)
        seen += ids
        if not cursor:
            return seen
    raise AssertionError("pagination did not end")


def newest_first(events: list[Event]) -> list[int]:
    return [e.pk for e in sorted(events, key=lambda e: (e.occurred_at, e.pk), reverse=True)]


@pytest.fixture
def ann(acme: Workspace) -> Contact:
    return person(acme, "ann@example.com")


@pytest.fixture
def shop(acme: Workspace, globex: Workspace, ann: Contact) -> dict[str, Any]:
    """Ann's visit and order, Bob's browsing, an anonymous visitor, and globex's own events."""
    bob = person(acme, "bob@example.com")
    events = {
        "page": event(acme, ann, "Home", NOW - timedelta(days=3), type="page", properties={"path": "/"}),
        "viewed": event(
            acme, ann, "Product Viewed", NOW - timedelta(days=2), properties={"name": "Trail shoe", "price": 89.9}
        ),
        "order": event(
            acme,
            ann,
            "Order Completed",
            NOW - timedelta(days=1),
            properties={
                "order_id": "A-1001",
                "total": 129.8,
                "currency": "EUR",
                "products": [{"product_id": "sku-1", "name": "Trail shoe", "price": 89.9, "quantity": 1}],
            },
            context={"ip": "203.0.113.9"},
        ),
        "identify": event(
            acme, ann, "", NOW - timedelta(days=4), type="identify", properties={"email": "ann@example.com"}
        ),
        "bob": event(acme, bob, "Product Viewed", NOW - timedelta(hours=5), properties={"name": "Tent"}),
        "anonymous": event(acme, None, "Product Viewed", NOW - timedelta(hours=1), anonymous_id="anon-42"),
    }
    globex_person = person(globex, "g@x.test")
    events["globex"] = event(globex, globex_person, "Order Completed", NOW, properties={"order_id": "globexsecret"})
    return {"bob": bob, "globex_contact": globex_person, **events}


# --- the timeline ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_timeline_is_newest_first_by_occurred_at_and_places_a_late_event_in_time(
    acme: Workspace, ann: Contact, acme_client: Client
) -> None:
    early = event(acme, ann, "Product Viewed", NOW - timedelta(days=3))
    later = event(acme, ann, "Product Added", NOW - timedelta(days=1))
    # Happened between the two, but arrived last (an offline phone): its place is in between.
    late = event(acme, ann, "Cart Viewed", NOW - timedelta(days=2), received=NOW)
    page = contact_timeline(workspace=acme, contact_id=ann.pk)
    assert [e.pk for e in page.events] == [later.pk, late.pk, early.pk] and page.next_cursor is None

    html = acme_client.get(f"/audience/contacts/{ann.pk}/").content.decode()
    assert html.index("Product Added") < html.index("Cart Viewed") < html.index("Product Viewed")
    assert html.count("late: received") == 1  # only the late one shows when it arrived


@pytest.mark.django_db
def test_timeline_pages_by_keyset_without_gaps_or_duplicates(acme: Workspace, ann: Contact) -> None:
    # 47 events, many sharing one timestamp, so the id breaks ties across page boundaries.
    created = [
        event(acme, ann, f"Event {n % 4}", NOW - timedelta(minutes=n // 5), properties={"n": n}) for n in range(47)
    ]
    event(acme, person(acme, "other@example.com"), "Event 0", NOW)  # someone else's: never in Ann's timeline

    def fetch(cursor: EventCursor | None) -> tuple[list[int], EventCursor | None]:
        page = contact_timeline(workspace=acme, contact_id=ann.pk, cursor=cursor, limit=10)
        return [e.pk for e in page.events], page.next_cursor

    assert all_pages(fetch) == newest_first(created)


@pytest.mark.django_db
def test_older_events_come_as_an_htmx_partial(acme: Workspace, ann: Contact, acme_client: Client) -> None:
    created = [event(acme, ann, "Product Viewed", NOW - timedelta(hours=n)) for n in range(45)]
    profile = acme_client.get(f"/audience/contacts/{ann.pk}/").content.decode()
    assert profile.count("<time ") == 20 and "Older events" in profile
    seen = [int(x) for x in re.findall(r"m-(\d+)", profile)]
    next_url = re.search(r'hx-get="([^"]+)"', profile).group(1).replace("&amp;", "&")
    pages = 1
    while next_url:
        response = acme_client.get(next_url, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        part = response.content.decode()
        assert "<html" not in part and part.lstrip().startswith("<tr")  # rows only, swapped into the table
        seen += [int(x) for x in re.findall(r"m-(\d+)", part)]
        match = re.search(r'hx-get="([^"]+)"', part)
        next_url = match.group(1).replace("&amp;", "&") if match else ""
        pages += 1
    assert pages == 3
    expected = [int(Event.objects.get(pk=pk).message_id[2:]) for pk in newest_first(created)]
    assert seen == expected


@pytest.mark.django_db
def test_timeline_row_summarises_key_properties_and_shows_them_in_full(
    acme: Workspace, ann: Contact, shop: dict[str, Any], acme_client: Client
) -> None:
    html = acme_client.get(f"/audience/contacts/{ann.pk}/").content.decode()
    assert "#A-1001" in html and "Trail shoe" in html and "129.80 EUR" in html  # summary line
    assert "<details" in html and "&quot;order_id&quot;: &quot;A-1001&quot;" in html  # the full JSON
    assert "203.0.113.9" in html  # context too
    assert "ann@example.com" in html and "Tent" not in html  # Bob's event is not Ann's


@pytest.mark.django_db
def test_a_profile_without_events_says_so(acme: Workspace, ann: Contact, acme_client: Client) -> None:
    html = acme_client.get(f"/audience/contacts/{ann.pk}/").content.decode()
    assert "No events yet." in html and "Older events" not in html


# --- the explorer ---------------------------------------------------------------------------


def explorer(client: Client, query: str = "") -> str:
    response = client.get(f"/audience/events/?{query}")
    assert response.status_code == 200
    return response.content.decode()


def listed_messages(html: str) -> set[str]:
    return set(re.findall(r"messageId <code>([^<]+)</code>", html))


@pytest.mark.django_db
def test_explorer_lists_all_events_and_filters_each_way(
    acme: Workspace, shop: dict[str, Any], acme_client: Client
) -> None:
    ids = {key: e.message_id for key, e in shop.items() if isinstance(e, Event)}
    acme_events = {ids[k] for k in ("page", "viewed", "order", "identify", "bob", "anonymous")}
    assert listed_messages(explorer(acme_client)) == acme_events

    by_name = explorer(acme_client, "name=Product+Viewed")
    assert listed_messages(by_name) == {ids["viewed"], ids["bob"], ids["anonymous"]}
    assert '<option value="Order Completed"' in by_name and 'value="Product Viewed" selected' in by_name

    assert listed_messages(explorer(acme_client, "type=page")) == {ids["page"]}
    assert listed_messages(explorer(acme_client, "type=identify")) == {ids["identify"]}
    assert listed_messages(explorer(acme_client, "email=ANN@example.com")) == {
        ids[k] for k in ("page", "viewed", "order", "identify")
    }
    since = (NOW - timedelta(days=2, hours=1)).strftime("%Y-%m-%dT%H:%M")
    until = (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    assert listed_messages(explorer(acme_client, f"since={since}&until={until}")) == {
        ids["viewed"],
        ids["order"],
        ids["bob"],
    }
    combined = explorer(acme_client, f"name=Product+Viewed&email=bob@example.com&since={since}")
    assert listed_messages(combined) == {ids["bob"]}

    unknown = explorer(acme_client, "email=nobody@example.com")
    assert "No contact has the address" in unknown and not listed_messages(unknown)
    backwards = explorer(acme_client, f"since={until}&until={since}")
    assert "Must be after the start." in backwards and not listed_messages(backwards)


@pytest.mark.django_db
def test_explorer_shows_properties_contact_links_and_per_name_counts(
    acme: Workspace, ann: Contact, shop: dict[str, Any], acme_client: Client
) -> None:
    html = explorer(acme_client)
    assert f'href="/audience/contacts/{ann.pk}/"' in html and "anon-42" in html
    assert "&quot;order_id&quot;: &quot;A-1001&quot;" in html
    counts = dict(re.findall(r'class="role-badge" href="[^"]*name=([^"&]+)"[^>]*>[^<]*<strong>(\d+\+?)</strong>', html))
    assert counts == {"Product%20Viewed": "3", "Order%20Completed": "1", "Home": "1"}
    for_ann = explorer(acme_client, "email=ann@example.com")
    assert re.search(r"Product Viewed <strong>1</strong>", for_ann)


@pytest.mark.django_db
def test_per_name_counts_stop_at_the_cap(acme: Workspace, ann: Contact, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_selectors, "COUNT_CAP", 3)
    for n in range(5):
        event(acme, ann, "Product Viewed", NOW - timedelta(minutes=n))
    event(acme, ann, "Order Completed", NOW)
    counts = event_selectors.event_name_counts(workspace=acme, filters=EventFilters())
    assert [(c.name, c.count, c.capped) for c in counts] == [("Product Viewed", 3, True), ("Order Completed", 1, False)]


@pytest.mark.django_db
def test_explorer_pages_over_all_names_without_gaps_or_duplicates(
    acme: Workspace, ann: Contact, acme_client: Client
) -> None:
    # Five names, interleaved in time with ties: the merge over names must still be one order.
    created = [
        event(acme, ann if n % 3 else None, f"Name {n % 5}", NOW - timedelta(minutes=n // 3), anonymous_id="a")
        for n in range(130)
    ]
    created.append(event(acme, ann, "", NOW - timedelta(minutes=7), type="identify"))

    def fetch(cursor: EventCursor | None) -> tuple[list[int], EventCursor | None]:
        page = events_page(workspace=acme, filters=EventFilters(), cursor=cursor, limit=25)
        return [e.pk for e in page.events], page.next_cursor

    assert all_pages(fetch) == newest_first(created)

    messages: list[str] = []
    url = "/audience/events/"
    while url:
        html = explorer(acme_client, url.partition("?")[2])
        messages += re.findall(r"messageId <code>([^<]+)</code>", html)
        match = re.search(r'href="(\?[^"]*cursor=[^"]+)"[^>]*>Older events', html)
        url = match.group(1).replace("&amp;", "&") if match else ""
    assert messages == [Event.objects.get(pk=pk).message_id for pk in newest_first(created)]


@pytest.mark.django_db
def test_event_names_are_the_distinct_names(acme: Workspace, globex: Workspace, ann: Contact) -> None:
    for name in ["Product Viewed", "Order Completed", "Product Viewed", "Home", ""]:
        event(acme, ann, name, NOW)
    event(globex, None, "Globex Only", NOW)
    assert event_names(workspace=acme) == ["Home", "Order Completed", "Product Viewed"]
    assert event_names(workspace=acme, limit=2) == ["Home", "Order Completed"]


def _plan(sql: str) -> str:
    with connection.cursor() as db:
        db.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in db.fetchall())


@pytest.fixture
def many_events(acme: Workspace, globex: Workspace, ann: Contact) -> None:
    """40,000 events over 20 names and 400 contacts, analysed, so the planner chooses as it
    would on a big table (on a nearly empty one any plan is as good as another)."""
    with connection.cursor() as db:
        db.execute(
            """INSERT INTO audiences_contact (workspace_id, email, external_id, first_name, last_name, gender, phone,
                   city, country, time_zone, locale, attributes, tags, source, created_at, updated_at)
               SELECT %(acme)s, 'p' || g || '@example.com', '', '', '', '', '', '', '', '', '', '{}', '{}', '',
                      %(now)s, %(now)s
               FROM generate_series(1, 399) g RETURNING id""",
            {"acme": acme.pk, "now": NOW},
        )
        contacts = [ann.pk] + [row[0] for row in db.fetchall()]
        db.execute(
            """INSERT INTO audiences_event (workspace_id, contact_id, type, name, properties, context, user_id,
                   anonymous_id, message_id, occurred_at, received_at)
               SELECT CASE WHEN g %% 4 = 0 THEN %(globex)s ELSE %(acme)s END,
                      CASE WHEN g %% 4 = 0 THEN NULL ELSE (%(contacts)s::bigint[])[1 + g %% 399] END,
                      CASE WHEN g %% 10 = 0 THEN 'identify' ELSE 'track' END,
                      CASE WHEN g %% 10 = 0 THEN '' ELSE 'Event ' || g %% 19 END,
                      '{}', '{}', '', '', 'bulk-' || g, %(now)s - g * interval '1 minute', %(now)s
               FROM generate_series(1, 40000) g""",
            {"acme": acme.pk, "globex": globex.pk, "contacts": contacts, "now": NOW},
        )
        db.execute("ANALYZE audiences_event")
        db.execute("ANALYZE audiences_contact")


@pytest.mark.django_db
def test_each_read_runs_on_an_index_of_event(acme: Workspace, ann: Contact, many_events: None) -> None:
    """No read scans the whole event table (at 10M rows that takes seconds): each is a range
    of one of Event's indexes."""
    week_ago = NOW - timedelta(days=7)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"contact_id": ann.pk}, "event_contact_recent"),
        ({"contact_id": ann.pk, "name": "Event 0"}, "event_contact_recent"),
        ({"name": "Event 3"}, "event_workspace_name_time"),
        ({"name": "Event 3", "since": week_ago}, "event_workspace_name_time"),
        ({}, "event_workspace_name_time"),
        ({"since": week_ago, "until": NOW - timedelta(days=1)}, "event_workspace_name_time"),
        ({"type": "identify"}, "event_workspace_name_time"),
    ]
    cursor = EventCursor(occurred_at=NOW - timedelta(hours=5), id=10**12)
    for filters, index in cases:
        with CaptureQueriesContext(connection) as queries:
            page = events_page(workspace=acme, filters=EventFilters(**filters), cursor=cursor)
        assert page.events, filters
        plan = _plan(next(q["sql"] for q in queries.captured_queries if "occurred_at" in q["sql"]))
        assert index in plan and "Seq Scan on audiences_event" not in plan, (filters, plan)


@pytest.mark.django_db
def test_event_names_and_counts_read_the_name_index(acme: Workspace, many_events: None) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert len(event_names(workspace=acme)) == 19
        counts = event_selectors.event_name_counts(workspace=acme, filters=EventFilters(since=NOW - timedelta(days=3)))
    assert sum(c.count for c in counts) == len([g for g in range(1, 4321) if g % 4 and g % 10])
    for query in queries.captured_queries:
        plan = _plan(query["sql"])
        assert "event_workspace_name_time" in plan and "Seq Scan on audiences_event" not in plan, plan


@pytest.mark.django_db
def test_a_type_filter_that_scans_too_long_asks_for_a_narrower_query(
    acme: Workspace, ann: Contact, acme_api: APIClient, acme_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    event(acme, ann, "Home", NOW, type="page")
    monkeypatch.setattr(event_selectors, "TYPE_SCAN_TIMEOUT_MS", 50)
    real = event_selectors._merged_page_ids

    def slow(*args: Any) -> list[int]:
        with connection.cursor() as db:
            db.execute("SELECT pg_sleep(1)")  # stands in for reading a name's events to their end
        return real(*args)

    monkeypatch.setattr(event_selectors, "_merged_page_ids", slow)
    with pytest.raises(event_selectors.EventQueryTooBroad):
        events_page(workspace=acme, filters=EventFilters(type="page"))
    with connection.cursor() as db:
        db.execute("SHOW statement_timeout")
        assert db.fetchone()[0] == "0"  # the limit did not outlive the query
    assert "takes too long" in explorer(acme_client, "type=page")
    response = acme_api.get("/api/v1/events?type=page")
    assert response.status_code == 400 and "type" in response.json()["error"]["fields"]
    # With a name the type filter is a range of the name index: no limit needed.
    assert len(events_page(workspace=acme, filters=EventFilters(type="page", name="Home")).events) == 1


# --- the API --------------------------------------------------------------------------------


def api_pages(client: APIClient, url: str) -> list[int]:
    seen: list[int] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.json()
        seen += [e["id"] for e in response.json()["results"]]
        url = response.json()["next"]
    return seen


@pytest.mark.django_db
def test_events_api_filters(acme_api: APIClient, ann: Contact, shop: dict[str, Any]) -> None:
    def ids(query: str) -> set[int]:
        response = acme_api.get(f"/api/v1/events?{query}")
        assert response.status_code == 200, response.json()
        return {e["id"] for e in response.json()["results"]}

    pk = {key: e.pk for key, e in shop.items() if isinstance(e, Event)}
    assert ids("") == {pk[k] for k in ("page", "viewed", "order", "identify", "bob", "anonymous")}
    assert ids("name=Product%20Viewed") == {pk["viewed"], pk["bob"], pk["anonymous"]}
    assert ids(f"contact_id={ann.pk}") == {pk[k] for k in ("page", "viewed", "order", "identify")}
    assert ids(f"contact_id={ann.pk}&name=Order%20Completed") == {pk["order"]}
    assert ids("type=page") == {pk["page"]}
    assert ids("since=2026-05-30T00:00:00Z&until=2026-06-01T10:00:00%2B00:00") == {
        pk[k] for k in ("viewed", "order", "bob")
    }
    assert ids("since=2026-05-30T13:00:00%2B01:00&until=2026-06-01T10:00:00") == {pk["viewed"], pk["order"], pk["bob"]}
    assert ids("since=2026-05-30T14:00:00%2B01:00") == {pk["order"], pk["bob"], pk["anonymous"]}
    assert ids("since=2026-05-31") == {pk["order"], pk["bob"], pk["anonymous"]}  # a date is midnight UTC

    body = acme_api.get(f"/api/v1/contacts/{ann.pk}/events?name=Order%20Completed").json()
    assert [e["id"] for e in body["results"]] == [pk["order"]] and body["next"] is None
    order = body["results"][0]
    assert order["contact_id"] == ann.pk and order["type"] == "track"
    assert order["properties"]["order_id"] == "A-1001" and order["context"] == {"ip": "203.0.113.9"}
    assert order["occurred_at"].startswith("2026-05-31T12:00:00") and order["received_at"]


@pytest.mark.django_db
def test_events_api_cursor_walks_every_event_once(acme_api: APIClient, acme: Workspace, ann: Contact) -> None:
    created = [event(acme, ann, f"Name {n % 3}", NOW - timedelta(seconds=n // 4), anonymous_id="x") for n in range(33)]
    expected = newest_first(created)
    assert api_pages(acme_api, "/api/v1/events?limit=7") == expected
    assert api_pages(acme_api, f"/api/v1/contacts/{ann.pk}/events?limit=5") == expected
    assert api_pages(acme_api, "/api/v1/events?name=Name%201&limit=4") == [
        pk for pk in expected if Event.objects.get(pk=pk).name == "Name 1"
    ]
    # A newer event arriving mid-walk does not shift the pages behind the cursor.
    first = acme_api.get("/api/v1/events?limit=10").json()
    event(acme, ann, "Name 0", NOW + timedelta(hours=1))
    rest = api_pages(acme_api, first["next"])
    assert [e["id"] for e in first["results"]] + rest == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("type=purchase", "type"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-06-02&until=2026-06-01", "until"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("contact_id=abc", "contact_id"),
    ],
)
def test_events_api_bad_input_is_a_clear_400(acme_api: APIClient, query: str, field: str) -> None:
    response = acme_api.get(f"/api/v1/events?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"], error


@pytest.mark.django_db
def test_events_api_needs_the_read_scope(acme: Workspace) -> None:
    assert key_client(api_key(acme, scopes=[ApiScope.CONTACTS_READ])).get("/api/v1/events").status_code == 200
    refused = key_client(api_key(acme, scopes=[ApiScope.EVENTS_WRITE])).get("/api/v1/events")
    assert refused.status_code == 403 and "contacts:read" in refused.json()["error"]["message"]
    assert APIClient().get("/api/v1/events").status_code in (401, 403)


# --- isolation and roles --------------------------------------------------------------------


@pytest.mark.django_db
def test_acme_never_sees_globex_events(
    acme: Workspace, acme_api: APIClient, acme_client: Client, shop: dict[str, Any]
) -> None:
    globex_contact: Contact = shop["globex_contact"]
    pages = [
        explorer(acme_client),
        explorer(acme_client, "name=Order+Completed"),
        explorer(acme_client, "email=g@x.test"),
        acme_client.get(f"/audience/contacts/{shop['page'].contact_id}/").content.decode(),
    ]
    assert not any("globexsecret" in page or shop["globex"].message_id + "<" in page for page in pages)
    assert acme_client.get(f"/audience/contacts/{globex_contact.pk}/events/").status_code == 404
    cursor = EventCursor.of(shop["globex"]).encode()
    assert acme_client.get(f"/audience/contacts/{globex_contact.pk}/events/?cursor={cursor}").status_code == 404

    everything = acme_api.get("/api/v1/events?limit=1000").json()["results"]
    assert shop["globex"].pk not in {e["id"] for e in everything} and len(everything) == 6
    assert acme_api.get(f"/api/v1/events?contact_id={globex_contact.pk}").json()["results"] == []
    assert acme_api.get(f"/api/v1/contacts/{globex_contact.pk}/events").status_code == 404
    assert "globexsecret" not in acme_api.get("/api/v1/events?name=Order%20Completed").content.decode()


@pytest.mark.django_db
def test_a_viewer_reads_the_timeline_explorer_and_api(acme: Workspace, ann: Contact, shop: dict[str, Any]) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    assert "Order Completed" in viewer.get(f"/audience/contacts/{ann.pk}/").content.decode()
    assert viewer.get(f"/audience/contacts/{ann.pk}/events/").status_code == 200
    assert "A-1001" in explorer(viewer)
    assert viewer.get("/api/v1/events").status_code == 200
    assert viewer.get(f"/api/v1/contacts/{ann.pk}/events").status_code == 200
    assert '/audience/events/"' in viewer.get("/").content.decode()  # the nav link
