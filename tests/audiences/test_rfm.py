"""RFM scoring on a hand-built population (scores and segment names computed by hand below),
the RFM page (grid counts, named segments, the scoring button and its state), and a click on
a cell or a named segment making a segment."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from audiences.facts import (
    customer_scores_refresh,
    insight_figures_refresh,
    rfm_score,
    rfm_segment_of,
    scoring_request,
    scoring_request_all,
    scoring_status,
)
from audiences.models import Contact, CustomerFacts, RfmSegment, Segment
from audiences.services import contact_save
from esp.models import Role, Workspace
from tests.conftest import logged_in
from tests.factories import member, order_event

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)

# name: (days since the last order, orders, revenue)
POPULATION = {
    "c0": (1, 10, "1000"),
    "c1": (2, 8, "900"),
    "c2": (5, 1, "50"),
    "c3": (10, 3, "300"),
    "c4": (20, 2, "100"),
    "c5": (40, 1, "20"),
    "c6": (60, 5, "800"),
    "c7": (100, 1, "30"),
    "c8": (200, 2, "40"),
    "c9": (300, 1, "10"),
}
# By hand, 10 customers → 2 per quintile, 5 = best:
#   R by last order, oldest first: c9 c8 | c7 c6 | c5 c4 | c3 c2 | c1 c0
#   F by orders (ties by id):      c2 c5 | c7 c9 | c4 c8 | c3 c6 | c1 c0 — equal values take the
#                                  lowest tile of their value: 1 order → 1 (c2 c5 c7 c9), 2 → 3
#   M by revenue:                  c9 c5 | c7 c8 | c2 c4 | c3 c6 | c1 c0
#   FM = round-half-up((F + M) / 2), segment from the R × FM table in audiences/facts.py.
EXPECTED = {
    "c0": (5, 5, 5, RfmSegment.CHAMPIONS),
    "c1": (5, 5, 5, RfmSegment.CHAMPIONS),
    "c2": (4, 1, 3, RfmSegment.POTENTIAL_LOYALIST),  # FM 2
    "c3": (4, 4, 4, RfmSegment.CHAMPIONS),
    "c4": (3, 3, 3, RfmSegment.NEED_ATTENTION),
    "c5": (3, 1, 1, RfmSegment.ABOUT_TO_SLEEP),
    "c6": (2, 4, 4, RfmSegment.AT_RISK),
    "c7": (2, 1, 2, RfmSegment.HIBERNATING),  # FM 2
    "c8": (1, 3, 2, RfmSegment.AT_RISK),  # FM 3
    "c9": (1, 1, 1, RfmSegment.LOST),
}


def _customer(workspace: Workspace, name: str, days: int, orders: int, revenue: str) -> Contact:
    contact = contact_save(workspace=workspace, data={"email": f"{name}@example.com"})[0]
    CustomerFacts.objects.create(
        contact=contact,
        workspace=workspace,
        orders_count=orders,
        revenue=Decimal(revenue),
        first_order_at=NOW - timedelta(days=days + 30),
        last_order_at=NOW - timedelta(days=days),
    )
    return contact


@pytest.fixture
def population(acme: Workspace) -> dict[str, Contact]:
    return {name: _customer(acme, name, *values) for name, values in POPULATION.items()}


def _scores(contact: Contact) -> tuple[int | None, int | None, int | None, str]:
    facts = CustomerFacts.objects.get(pk=contact.pk)
    return facts.recency_score, facts.frequency_score, facts.monetary_score, facts.rfm_segment


def test_quintiles_and_segment_names(acme: Workspace, globex: Workspace, population: dict[str, Contact]) -> None:
    refunded = contact_save(workspace=acme, data={"email": "refunded@example.com"})[0]
    CustomerFacts.objects.create(
        contact=refunded, workspace=acme, orders_count=0, recency_score=5, frequency_score=5, monetary_score=5,
        rfm_segment=RfmSegment.CHAMPIONS,
    )  # fmt: skip
    theirs = _customer(globex, "theirs", 1, 1, "5")

    assert rfm_score(workspace_id=acme.pk, now=NOW) == 10

    assert {name: _scores(contact) for name, contact in population.items()} == EXPECTED
    assert _scores(refunded) == (None, None, None, "")  # no counted order: no score
    assert _scores(theirs) == (None, None, None, "")  # another workspace's run
    assert CustomerFacts.objects.get(pk=population["c0"].pk).rfm_scored_at == NOW
    assert rfm_score(workspace_id=globex.pk) == 1 and _scores(theirs) == (1, 1, 1, RfmSegment.LOST)


def test_the_segment_table() -> None:
    assert rfm_segment_of(5, 1, 1) == RfmSegment.NEW_CUSTOMER
    assert rfm_segment_of(4, 1, 2) == RfmSegment.POTENTIAL_LOYALIST  # FM (1 + 2) / 2 = 1.5 rounds up to 2
    assert rfm_segment_of(4, 1, 1) == RfmSegment.PROMISING
    assert rfm_segment_of(3, 5, 4) == RfmSegment.LOYAL
    assert rfm_segment_of(2, 5, 5) == RfmSegment.CANT_LOSE_THEM
    assert rfm_segment_of(1, 4, 4) == RfmSegment.CANT_LOSE_THEM
    assert rfm_segment_of(2, 1, 2) == RfmSegment.HIBERNATING
    assert rfm_segment_of(1, 2, 1) == RfmSegment.LOST


def test_scores_from_order_events(acme: Workspace) -> None:
    """End to end: events → facts → scores. A lone customer is in the first tile of each
    ranking (NTILE): quintiles only mean something once there are customers to rank."""
    from audiences.facts import purchase_facts_refresh

    ann = contact_save(workspace=acme, data={"email": "ann@example.com"})[0]
    order_event(ann, "1", 10, NOW - timedelta(days=2))
    purchase_facts_refresh(workspace_id=acme.pk, contact_ids=[ann.pk])
    assert rfm_score(workspace_id=acme.pk) == 1
    assert _scores(ann) == (1, 1, 1, RfmSegment.LOST)


def _cell(page: str, recency: int, frequency: int) -> int:
    match = re.search(
        rf'data-recency="{recency}" data-frequency="{frequency}"[^>]*>.*?class="[^"]*rfm-count"[^>]*>(\d+)<',
        page,
        re.S,
    )
    assert match, (recency, frequency)
    return int(match.group(1))


def test_page_shows_the_grid_and_the_named_segments(
    acme: Workspace, acme_client: Client, population: dict[str, Contact]
) -> None:
    customer_scores_refresh(workspace_id=acme.pk)  # the job: scores, stages, the page's figures
    page = acme_client.get("/audience/rfm/").content.decode()
    assert _cell(page, 5, 5) == 2 and _cell(page, 4, 1) == 1 and _cell(page, 1, 3) == 1
    assert _cell(page, 5, 1) == 0 and _cell(page, 3, 2) == 0
    assert sum(_cell(page, r, f) for r in range(1, 6) for f in range(1, 6)) == 10
    champions = re.search(r'data-segment="champions"><td>[^<]+</td><td>(\d+)</td><td>([^<]+)</td>', page)
    assert champions and champions.groups() == ("3", "€733.33")  # (1000 + 900 + 300) / 3, in the workspace currency
    assert re.search(r'data-segment="new_customer"><td>[^<]+</td><td>0</td><td>—</td>', page)
    assert "Last scored" in page

    viewer_page = logged_in(member(acme, Role.VIEWER)).get("/audience/rfm/").content.decode()
    assert _cell(viewer_page, 5, 5) == 2 and "Score now" not in viewer_page and "rfm-segment" not in viewer_page


def test_viewer_cannot_trigger_scoring_and_a_marketer_can(acme: Workspace, population: dict[str, Contact]) -> None:
    viewer = logged_in(member(acme, Role.VIEWER))
    assert viewer.post("/audience/rfm/").status_code == 403
    assert viewer.post("/audience/rfm/segment/", {"recency": 5, "frequency": 5}).status_code == 403
    assert scoring_status(workspace_id=acme.pk).state == ""

    marketer = logged_in(member(acme, Role.MARKETER))
    from audiences.facts import scoring

    sent: list[tuple[object, tuple[object, ...]]] = []
    original = scoring.enqueue_after_commit
    scoring.enqueue_after_commit = lambda task, *args: sent.append((task.name, args))  # type: ignore[assignment]
    try:
        assert marketer.post("/audience/rfm/").status_code == 302
        assert scoring_status(workspace_id=acme.pk).state == "queued"
        page = marketer.get("/audience/rfm/").content.decode()
        assert "Scoring is queued" in page and 'hx-trigger="every 3s"' in page
        marketer.post("/audience/rfm/")  # a second click while queued queues nothing
    finally:
        scoring.enqueue_after_commit = original  # type: ignore[assignment]
    assert sent == [("audiences.score_rfm", (acme.pk,))]


def test_the_job_scores_and_records_its_run(
    acme: Workspace, population: dict[str, Contact], run_tasks_now: None, django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        assert scoring_request(workspace_id=acme.pk)
    status = scoring_status(workspace_id=acme.pk)
    assert status.state == "" and status.last_customers == 10 and status.last_finished_at is not None
    assert _scores(population["c0"]) == EXPECTED["c0"]
    cache.clear()  # the cache lost: the facts rows still tell when scoring last ran
    assert scoring_status(workspace_id=acme.pk).last_finished_at is not None


def test_nightly_fan_out_covers_workspaces_with_customers(acme: Workspace, globex: Workspace) -> None:
    _customer(acme, "a", 1, 1, "1")
    from audiences.facts import scoring

    sent: list[tuple[object, ...]] = []
    original = scoring.enqueue_after_commit
    scoring.enqueue_after_commit = lambda task, *args: sent.append(args)  # type: ignore[assignment]
    try:
        assert scoring_request_all() == 1
    finally:
        scoring.enqueue_after_commit = original  # type: ignore[assignment]
    assert sent == [(acme.pk,)]  # globex has no customers


def test_clicking_a_cell_or_a_named_segment_makes_a_segment(
    acme: Workspace, acme_client: Client, population: dict[str, Contact]
) -> None:
    from audiences.segments.compiler import segment_queryset

    rfm_score(workspace_id=acme.pk)
    response = acme_client.post("/audience/rfm/segment/", {"recency": 5, "frequency": 5})
    segment = Segment.objects.get(workspace=acme)
    assert response.status_code == 302 and response["Location"].endswith(f"/{segment.pk}/")
    conditions = segment.rules["conditions"]
    assert [(c["kind"], c["field"], c["operator"], c["value"]) for c in conditions] == [
        ("facts", "recency_score", "eq", 5),
        ("facts", "frequency_score", "eq", 5),
    ]
    members = segment_queryset(workspace=acme, rules=segment.rules)
    assert set(members) == {population["c0"], population["c1"]}

    # The same cell again opens the same segment.
    again = acme_client.post("/audience/rfm/segment/", {"recency": 5, "frequency": 5})
    assert again["Location"] == response["Location"] and Segment.objects.filter(workspace=acme).count() == 1

    named = acme_client.post("/audience/rfm/segment/", {"segment": "at_risk"})
    at_risk = Segment.objects.get(workspace=acme, rules__conditions__0__kind="rfm_segment")
    assert named["Location"].endswith(f"/{at_risk.pk}/")
    assert set(segment_queryset(workspace=acme, rules=at_risk.rules)) == {population["c6"], population["c8"]}

    assert acme_client.post("/audience/rfm/segment/", {"recency": 9, "frequency": 1}).status_code == 302
    assert acme_client.post("/audience/rfm/segment/", {"segment": "nope"}).status_code == 302
    assert Segment.objects.filter(workspace=acme).count() == 2


def test_rfm_page_is_scoped_to_the_workspace(
    acme: Workspace, globex: Workspace, acme_client: Client, population: dict[str, Contact]
) -> None:
    for n in range(3):
        _customer(globex, f"g{n}", 1, 1, "1")
    rfm_score(workspace_id=acme.pk)
    rfm_score(workspace_id=globex.pk)
    insight_figures_refresh(workspace_id=acme.pk)
    insight_figures_refresh(workspace_id=globex.pk)
    page = acme_client.get("/audience/rfm/").content.decode()
    assert "10 scored customers" in page


# --- one sort per score: the same scores as NTILE and the lowest tile of each value ----------

_NTILE_SQL = """
    WITH tiles AS (
        SELECT contact_id, last_order_at, orders_count, revenue,
               NTILE(5) OVER (ORDER BY last_order_at, contact_id) AS r_tile,
               NTILE(5) OVER (ORDER BY orders_count, contact_id) AS f_tile,
               NTILE(5) OVER (ORDER BY revenue, contact_id) AS m_tile
        FROM audiences_customerfacts
        WHERE workspace_id = %s AND orders_count > 0 AND last_order_at IS NOT NULL
    )
    SELECT contact_id, MIN(r_tile) OVER (PARTITION BY last_order_at),
           MIN(f_tile) OVER (PARTITION BY orders_count), MIN(m_tile) OVER (PARTITION BY revenue)
    FROM tiles
"""  # the definition, as it was computed with six window sorts


@pytest.mark.parametrize("customers", [1, 2, 4, 5, 6, 7, 9, 13, 23, 50])
def test_scores_equal_the_ntile_definition(acme: Workspace, customers: int) -> None:
    from django.db import connection

    for n in range(customers):  # heavy ties: few distinct days, order counts and revenues
        _customer(acme, f"t{n}", days=n % 4, orders=1 + (n * 7) % 3, revenue=str(10 * ((n * 5) % 6)))
    assert rfm_score(workspace_id=acme.pk, now=NOW) == customers
    with connection.cursor() as cursor:
        cursor.execute(_NTILE_SQL, [acme.pk])
        expected = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
    scored = CustomerFacts.objects.filter(workspace=acme).values_list(
        "contact_id", "recency_score", "frequency_score", "monetary_score", "rfm_segment"
    )
    assert {row[0]: row[1:4] for row in scored} == expected
    assert all(segment == rfm_segment_of(*scores) for _pk, *scores, segment in scored)


def test_a_second_run_rewrites_only_what_changed(acme: Workspace, population: dict[str, Contact]) -> None:
    rfm_score(workspace_id=acme.pk, now=NOW)
    later = NOW + timedelta(hours=1)
    CustomerFacts.objects.filter(pk=population["c9"].pk).update(last_order_at=NOW)  # c9 ordered again
    assert rfm_score(workspace_id=acme.pk, now=later) == 10
    rewritten = set(CustomerFacts.objects.filter(workspace=acme, rfm_scored_at=later).values_list("pk", flat=True))
    # Recency now: c8 c7 | c6 c5 | c4 c3 | c2 c1 | c0 c9 — every other customer moved down a tile.
    assert rewritten == {population[name].pk for name in ("c1", "c3", "c5", "c7", "c9")}
    assert _scores(population["c9"])[0] == 5


def test_empty_frequency_columns_are_explained(acme: Workspace, acme_client: Client) -> None:
    # 7 of 10 customers have one order: F1 holds them all, F2 and F3 stay empty.
    for n in range(10):
        _customer(acme, f"e{n}", days=n, orders=1 if n < 7 else n - 5, revenue=str(10 + n))
    customer_scores_refresh(workspace_id=acme.pk)
    page = acme_client.get("/audience/rfm/").content.decode()
    headers = dict(re.findall(r'data-frequency-column="(\d)">F\d<br><small class="muted">([^<]+)</small>', page))
    assert headers == {"1": "1 order", "2": "no customers", "3": "no customers", "4": "2 orders", "5": "3–4 orders"}
    assert "Empty frequency columns are not an error" in page and "the 70 % with at most 1 order" in page


def test_the_page_reads_the_stored_figures(
    acme: Workspace, acme_client: Client, population: dict[str, Contact]
) -> None:
    customer_scores_refresh(workspace_id=acme.pk)
    newcomer = _customer(acme, "newcomer", 1, 1, "1")
    CustomerFacts.objects.filter(pk=newcomer.pk).update(recency_score=5, frequency_score=1, monetary_score=1)
    assert "10 scored customers" in acme_client.get("/audience/rfm/").content.decode()  # until the next run
    customer_scores_refresh(workspace_id=acme.pk)
    assert "11 scored customers" in acme_client.get("/audience/rfm/").content.decode()


def test_a_shortcut_segment_name_is_made_unique_whatever_its_case(acme: Workspace) -> None:
    from audiences.insights.services import segment_for_rules

    vip = {"conditions": [{"kind": "tag", "operator": "in", "value": ["vip"]}]}
    new = {"conditions": [{"kind": "tag", "operator": "in", "value": ["new"]}]}
    segment_for_rules(workspace=acme, name="CHAMPIONS", rules=vip)
    assert segment_for_rules(workspace=acme, name="Champions", rules=new).name == "Champions (2)"
