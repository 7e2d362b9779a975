"""Watching and testing a series: step counts over a chosen period (with the revenue of the
conversions), the people behind each count (keyset pages), every email of the series sent to a
team member through the real road, and the trace linking each step to its card."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from audiences.models import Contact
from automations.models import Enrollment, Series, Trace
from automations.selectors import series_step_counts
from automations.step_people import Cursor, parse_what, step_people
from campaigns.delivery.sender import messages_send_due
from campaigns.models import EmailTemplate, Message
from campaigns.providers.services import provider_create
from esp import clock as engine_clock
from esp.models import Role, Workspace
from tests.automations.series_helpers import contact, live_series, tick, track, welcome_steps
from tests.campaigns.test_delivery import SmtpServer, smtp  # noqa: F401 — the SMTP sink fixture
from tests.conftest import logged_in
from tests.factories import member

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def history(acme: Workspace, templates: dict[str, EmailTemplate], clock: Any) -> dict[str, Any]:
    """Fifty days of a welcome series, ending at the real now:

    - ann (day -50) orders for 100 a day later: converted while waiting on "pause";
    - eve (day -31) arrives on "pause" before the last 30 days, leaves it on day -29 for the coupon;
    - bob and cid (day -5): bob orders ("revenue": "59.90") while waiting, cid gets the coupon;
    - dan signs up now and waits on "pause"."""
    end = clock.now()
    clock.freeze(end - dt.timedelta(days=50))
    series = live_series(acme, welcome_steps(templates), name="Welcome drip", goal={"event": "Order Completed"})
    people = {
        name: contact(acme, f"{name}@example.com", first_name=name.title()) for name in "ann eve bob cid dan".split()
    }
    track(people["ann"], "Signed Up")
    clock.advance(days=1)
    track(people["ann"], "Order Completed", total=100, order_id="A-1")
    clock.freeze(end - dt.timedelta(days=31))
    track(people["eve"], "Signed Up")
    clock.advance(days=2)
    tick()
    clock.freeze(end - dt.timedelta(days=5))
    track(people["bob"], "Signed Up")
    track(people["cid"], "Signed Up")
    clock.advance(hours=5)
    track(people["bob"], "Order Completed", revenue="59.90", order_id="B-1")
    clock.advance(days=2)
    tick()
    clock.freeze(end)
    track(people["dan"], "Signed Up")
    return {"series": series, **people}


def _counts(workspace: Workspace, series: Series, days: int | None) -> dict[str, Any]:
    since = None if days is None else engine_clock.now() - dt.timedelta(days=days)
    return series_step_counts(workspace=workspace, series=series, since=since)


# --- counts over a period ---------------------------------------------------------------------


def test_counts_over_all_time_and_the_last_30_days(acme: Workspace, history: dict[str, Any]) -> None:
    series = history["series"]
    every = _counts(acme, series, None)
    assert (every["welcome"].reached, every["welcome"].sent) == (5, 5)
    assert (every["pause"].reached, every["pause"].waiting_now, every["pause"].converted) == (5, 1, 2)
    # Revenue: ann's order by its total, bob's by its revenue (a numeric string), as purchase facts read them.
    assert every["pause"].revenue == Decimal("159.90")
    assert every["welcome"].revenue == Decimal(0)  # nobody converted while standing on the email step
    assert every["ordered"].branches == {"no": 2} and every["coupon"].sent == 2

    recent = _counts(acme, series, 30)
    assert (recent["welcome"].reached, recent["welcome"].sent) == (3, 3)  # bob, cid, dan
    # Eve arrived on the wait 31 days ago and left it 29 days ago: she did not reach it in the period.
    assert recent["pause"].reached == 3 and recent["pause"].waiting_now == 1
    assert (recent["pause"].converted, recent["pause"].revenue) == (1, Decimal("59.90"))
    assert recent["ordered"].reached == 2 and recent["ordered"].branches == {"no": 2}  # eve and cid
    assert recent["coupon"].sent == 2

    week = _counts(acme, series, 7)
    assert week["pause"].reached == 3 and week["ordered"].reached == 1 and week["coupon"].sent == 1


def test_a_keyed_goal_counts_the_order_of_its_own_cart(
    acme: Workspace, templates: dict[str, EmailTemplate], clock: Any
) -> None:
    """The revenue is the goal event that converted: for a keyed goal the order of the entry's
    cart, not an earlier order of another cart; an event with only `value` counts by it."""
    series = live_series(
        acme,
        [
            {"key": "nudge", "type": "send", "template": templates["reminder"].pk, "next": "pause"},
            {"key": "pause", "type": "wait", "amount": 1, "unit": "days"},
        ],
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
        goal={"event": "Order Completed", "key": "cart_id"},
    )
    ann, bob = contact(acme, "ann@example.com"), contact(acme, "bob@example.com")
    track(ann, "Checkout Started", cart_id="A")
    track(bob, "Checkout Started", cart_id="B")
    clock.advance(hours=1)
    track(ann, "Order Completed", cart_id="other", total=999)  # another cart: no conversion
    clock.advance(hours=1)
    track(ann, "Order Completed", cart_id="A", total="30.50", products=[{"price": 1}])
    track(bob, "Order Completed", cart_id="B", value=12)
    counts = series_step_counts(workspace=acme, series=series)
    assert (counts["pause"].converted, counts["pause"].revenue) == (2, Decimal("42.50"))
    assert counts["nudge"].revenue == Decimal(0)


def test_waiting_is_always_now_and_today_starts_at_local_midnight(acme: Workspace, history: dict[str, Any]) -> None:
    from automations.periods import period_since

    tz = timezone.get_fixed_timezone(0)
    since = period_since("today", tz)  # type: ignore[arg-type]
    assert since is not None and since.time() == dt.time(0) and since <= engine_clock.now()
    today = series_step_counts(workspace=acme, series=history["series"], since=since)
    assert today["welcome"].reached == 1 and today["pause"].waiting_now == 1
    assert today["pause"].converted == 0 and today["pause"].revenue == Decimal(0)


def test_counts_take_a_few_grouped_queries_whatever_the_steps(acme: Workspace, history: dict[str, Any]) -> None:
    with CaptureQueriesContext(connection) as queries:
        _counts(acme, history["series"], 30)
    reads = [q["sql"] for q in queries.captured_queries if "automations_" in q["sql"]]
    # Outcomes (with their messages), reached, waiting now, conversions' revenue.
    assert len(reads) == 4
    assert any("jit = off" in q["sql"] for q in queries.captured_queries)
    assert all("OFFSET" not in q["sql"] for q in queries.captured_queries)


def test_skip_reasons_and_opens_are_counted_and_listed(acme: Workspace, history: dict[str, Any]) -> None:
    series = history["series"]
    coupon = Message.objects.get(contact=history["cid"], source__endswith=":coupon")
    Message.objects.filter(pk=coupon.pk).update(state="skipped", reason="weekly_cap")
    Message.objects.filter(contact=history["bob"], source__endswith=":welcome").update(
        state="sent", opened_at=engine_clock.now(), clicked_at=engine_clock.now()
    )
    counts = _counts(acme, series, 30)
    assert counts["coupon"].sent == 1 and counts["coupon"].skipped == {"weekly_cap": 1}
    assert (counts["welcome"].opened, counts["welcome"].clicked) == (1, 1)

    def emails(key: str, what: str) -> list[str]:
        since = engine_clock.now() - dt.timedelta(days=30)
        page = step_people(workspace=acme, series=series, step_key=key, what=parse_what(what), since=since)
        return [p.enrollment.contact.email for p in page.people]

    assert emails("coupon", "skipped:weekly_cap") == ["cid@example.com"]
    assert emails("coupon", "sent") == ["eve@example.com"]
    assert emails("welcome", "opened") == emails("welcome", "clicked") == ["bob@example.com"]


# --- the series page --------------------------------------------------------------------------


def test_series_page_chooses_the_period_and_links_each_count(acme_client: Client, history: dict[str, Any]) -> None:
    series = history["series"]
    page = acme_client.get(f"/series/{series.pk}/")
    html = page.content.decode()
    assert page.context["period"] == "30d"
    assert '<option value="30d" selected>' in html and '<option value="all">' in html
    assert f'hx-get="/series/{series.pk}/steps/?period=30d" hx-trigger="every 5s"' in html
    people = f"/series/{series.pk}/steps/pause/people/?period=30d&amp;what="
    assert f'<a href="{people}reached">3</a>' in html and f'<a href="{people}waiting">1</a>' in html
    assert f'<a href="{people}converted">1</a>' in html and 'data-count="revenue">€59.90<' in html
    assert "Converted here: the goal (Order Completed) arrived while the contact stood on this step" in html
    assert f'href="/series/{series.pk}/steps/ordered/people/?period=30d&amp;what=branch%3Ano">2<' in html

    every = acme_client.get(f"/series/{series.pk}/steps/?period=all", HTTP_HX_TRIGGER="steps-period", **HTMX)
    assert every.status_code == 200 and every["HX-Replace-Url"] == f"/series/{series.pk}/?period=all"
    html = every.content.decode()
    assert f'hx-get="/series/{series.pk}/steps/?period=all"' in html and 'data-count="revenue">€159.90<' in html
    polled = acme_client.get(f"/series/{series.pk}/steps/?period=7d", **HTMX)
    assert "HX-Replace-Url" not in polled and '<option value="7d" selected>' in polled.content.decode()

    for url in (f"/series/{series.pk}/?period=year", f"/series/{series.pk}/steps/?period=1d"):
        refused = acme_client.get(url)
        assert refused.status_code == 400 and "Unknown period" in refused.content.decode(), url


# --- the people behind a count ----------------------------------------------------------------


def _listed(client: Client, url: str) -> list[str]:
    page = client.get(url)
    assert page.status_code == 200, url
    return [row["person"].enrollment.contact.email for row in page.context["rows"]]


def test_each_count_lists_its_people(acme_client: Client, history: dict[str, Any]) -> None:
    base = f"/series/{history['series'].pk}/steps"
    assert _listed(acme_client, f"{base}/pause/people/?what=converted&period=all") == [
        "bob@example.com",
        "ann@example.com",
    ]
    assert _listed(acme_client, f"{base}/pause/people/?what=converted") == ["bob@example.com"]  # 30 days
    assert _listed(acme_client, f"{base}/pause/people/?what=waiting&period=today") == ["dan@example.com"]
    assert _listed(acme_client, f"{base}/pause/people/?what=reached&period=30d") == [
        "dan@example.com",
        "cid@example.com",
        "bob@example.com",
    ]
    assert _listed(acme_client, f"{base}/pause/people/") == _listed(acme_client, f"{base}/pause/people/?what=reached")
    assert _listed(acme_client, f"{base}/ordered/people/?what=branch%3Ano&period=all") == [
        "cid@example.com",
        "eve@example.com",
    ]
    assert _listed(acme_client, f"{base}/welcome/people/?what=sent&period=7d") == [
        "dan@example.com",
        "cid@example.com",
        "bob@example.com",
    ]
    page = acme_client.get(f"{base}/pause/people/?what=converted&period=all")
    html = page.content.decode()
    bob_enrollment = Enrollment.objects.get(contact=history["bob"])
    assert f'href="/audience/contacts/{history["bob"].pk}/">bob@example.com</a>' in html
    assert f'href="/series/enrollments/{bob_enrollment.pk}/"' in html
    assert "converted: goal Order Completed at" in html and "Converted on this step" in html
    # Each conversion with what its goal event was worth.
    assert [str(row["amount"]) for row in page.context["rows"]] == ["59.90", "100"]
    assert "<strong data-amount>€59.90</strong>" in html and "<strong data-amount>€100.00</strong>" in html


def test_people_pages_are_keyset_pages(acme: Workspace, acme_client: Client, history: dict[str, Any]) -> None:
    series = history["series"]
    seen: list[str] = []
    after = None
    with CaptureQueriesContext(connection) as queries:
        while True:
            page = step_people(
                workspace=acme,
                series=series,
                step_key="welcome",
                what=parse_what("reached"),
                since=None,
                after=after,
                size=2,
            )
            seen += [p.enrollment.contact.email for p in page.people]
            if page.next_cursor is None:
                break
            after = page.next_cursor
    assert seen == ["dan@example.com", "cid@example.com", "bob@example.com", "eve@example.com", "ann@example.com"]
    assert all("OFFSET" not in q["sql"] for q in queries.captured_queries)
    # The view takes the cursor back from the address it printed.
    cursor = Cursor(engine_clock.now(), 10**12)
    assert Cursor.decode(cursor.encode()) == cursor
    url = f"/series/{series.pk}/steps/welcome/people/?what=reached&period=all&after={cursor.encode()}"
    assert len(_listed(acme_client, url)) == 5


def test_the_list_pages_50_at_a_time(acme: Workspace, acme_client: Client, templates: dict[str, EmailTemplate]) -> None:
    series = live_series(acme, [{"key": "hello", "type": "send", "template": templates["welcome"].pk}])
    for n in range(52):
        track(contact(acme, f"p{n:02}@example.com"), "Signed Up")
    first = acme_client.get(f"/series/{series.pk}/steps/hello/people/?what=sent")
    assert len(first.context["rows"]) == 50 and first.context["next_after"]
    html = first.content.decode()
    older = re.search(r'href="\?what=sent&amp;period=30d&amp;after=([0-9_]+)"', html)
    assert older is not None
    second = acme_client.get(f"/series/{series.pk}/steps/hello/people/?what=sent&period=30d&after={older.group(1)}")
    assert [row["person"].enrollment.contact.email for row in second.context["rows"]] == [
        "p01@example.com",
        "p00@example.com",
    ]
    assert not second.context["next_after"]


def test_bad_lists_are_refused_and_other_workspaces_are_404(
    acme: Workspace, acme_client: Client, globex: Workspace, history: dict[str, Any]
) -> None:
    base = f"/series/{history['series'].pk}/steps"
    for query, words in (
        ("what=everyone", "Unknown list"),
        ("what=skipped:", "Unknown list"),
        ("what=branch", "Unknown list"),
        ("what=sent&period=forever", "Unknown period"),
        ("what=sent&after=yesterday", "This page address is broken"),
        ("what=sent&after=99999999999999999999_1", "This page address is broken"),
    ):
        page = acme_client.get(f"{base}/pause/people/?{query}")
        assert page.status_code == 400 and words in page.content.decode(), query
    assert acme_client.get(f"{base}/nowhere/people/?what=sent").status_code == 404
    template = EmailTemplate.objects.create(workspace=globex, name="Hi", subject="Hi", mjml="<mjml/>")
    theirs = live_series(globex, [{"key": "pause", "type": "send", "template": template.pk}], name="Globex")
    track(contact(globex, "gina@globex.test"), "Signed Up")
    for url in (
        f"/series/{theirs.pk}/steps/pause/people/?what=sent",
        f"/series/{theirs.pk}/send-to-me/",
    ):
        assert acme_client.get(url).status_code == 404, url
        assert acme_client.post(url).status_code in (404, 405), url
    # Their step of the same key lists none of ours, ours none of theirs.
    assert "gina@globex.test" not in acme_client.get(f"{base}/pause/people/?what=reached&period=all").content.decode()
    viewer = logged_in(member(acme, Role.VIEWER, email="vic@acme.test"))
    assert viewer.get(f"{base}/pause/people/?what=waiting").status_code == 200  # reading is for viewers too


# --- the trace links each step to the editor --------------------------------------------------


def test_trace_links_each_step(acme_client: Client, history: dict[str, Any]) -> None:
    series = history["series"]
    enrollment = Enrollment.objects.get(contact=history["dan"])
    try:
        expected = reverse("series-builder", args=[series.pk]) + "?step=pause"
    except NoReverseMatch:  # until the builder is in: the step's card on the series page
        expected = f"/series/{series.pk}/#step-pause"
    timeline = acme_client.get(f"/series/enrollments/{enrollment.pk}/").content.decode()
    assert timeline.count(f'href="{expected}"') == 2  # "now at step" and the trace's waiting row
    profile = acme_client.get(f"/series/contacts/{history['dan'].pk}/enrollments/", **HTMX).content.decode()
    assert f'href="{expected}"' in profile and f'href="{expected.replace("pause", "welcome")}"' in profile


# --- every email of the series to me ----------------------------------------------------------


@pytest.fixture
def sink(acme: Workspace, local_outbound: None, request: pytest.FixtureRequest) -> SmtpServer:
    """A real SMTP server (the delivery tests' sink) as acme's default provider."""
    server: SmtpServer = request.getfixturevalue("smtp")
    acme.postal_address = "1 Main St, Springfield"
    acme.save()
    provider_create(
        workspace=acme,
        name="Test relay",
        kind="smtp",
        credentials={"host": "127.0.0.1", "port": server.port, "use_tls": False, "timeout": 5},
        is_default=True,
    )
    return server


@pytest.fixture
def branching(acme: Workspace, clock: Any) -> Series:
    """Welcome, then yes (thanks) or no (coupon): drawn welcome, thanks, coupon."""

    def template(name: str, subject: str) -> int:
        text = f"{name} for {{{{ contact.first_name }}}}, cart {{{{ event.cart_id }}}}"
        body = (
            f"<mjml><mj-body><mj-section><mj-column><mj-text>{text}</mj-text></mj-column></mj-section></mj-body></mjml>"
        )
        return EmailTemplate.objects.create(workspace=acme, name=name, subject=subject, mjml=body).pk

    return live_series(
        acme,
        [
            {
                "key": "welcome",
                "type": "send",
                "template": template("Welcome", "Hello {{ contact.first_name }}"),
                "next": "ordered",
            },
            {
                "key": "coupon",
                "type": "send",
                "template": template("Coupon", "Coupon"),
                "subject": "10 % off, {{ contact.first_name }}",
            },
            {
                "key": "ordered",
                "type": "condition",
                "events_since_entry": [{"event": "Order Completed"}],
                "yes": "thanks",
                "no": "coupon",
            },
            {"key": "thanks", "type": "send", "template": template("Thanks", "Thank you, {{ contact.first_name }}")},
        ],
        name="Cart rescue",
        trigger={"type": "event", "event": "Checkout Started", "key": "cart_id"},
    )


def test_every_email_arrives_in_order_personalised_and_uncounted(
    acme: Workspace,
    sink: SmtpServer,
    branching: Series,
    clock: Any,
) -> None:
    marketer = member(acme, Role.MARKETER, email="mia@acme.test")
    olga = contact(acme, "olga@example.com", first_name="Olga")
    track(olga, "Checkout Started", cart_id="C-7")
    messages_send_due()  # her own emails of the series go first
    her_mail = len(sink.to("olga@example.com"))
    before_counts = series_step_counts(workspace=acme, series=branching)
    before = (Trace.objects.count(), Enrollment.objects.count(), Message.objects.filter(contact__isnull=False).count())
    olga_row = Contact.objects.filter(pk=olga.pk).values().get()
    client = logged_in(marketer)
    form = client.get(f"/series/{branching.pk}/").context["send_to_me_form"]
    assert form.initial["to_email"] == "mia@acme.test"

    answer = client.post(
        f"/series/{branching.pk}/send-to-me/",
        {"to_email": "mia@acme.test", "contact_email": "olga@example.com", "event_data": "auto", "minutes_apart": 2},
    )
    assert answer.status_code == 302
    assert "3 emails of version 1 are on their way to mia@acme.test." in client.get(answer["Location"]).content.decode()
    subjects = []
    for _step in range(3):  # one falls due every two minutes
        messages_send_due()
        arrived = sink.to("mia@acme.test")
        assert len(arrived) == len(subjects) + 1
        subjects.append(arrived[-1]["Subject"])
        clock.advance(minutes=2)
    assert subjects == ["Hello Olga", "Thank you, Olga", "10 % off, Olga"]  # yes before no, the step's subject
    bodies = [mail.get_body(("plain",)).get_content() for mail in sink.to("mia@acme.test")]
    assert "Welcome for Olga, cart C-7" in bodies[0] and "Coupon for Olga, cart C-7" in bodies[2]
    assert len(sink.to("olga@example.com")) == her_mail
    tests = list(Message.objects.filter(workspace=acme, contact__isnull=True).order_by("due_at"))
    assert [m.state for m in tests] == ["sent"] * 3 and all(m.source.startswith("test:") for m in tests)
    assert [m.due_at - tests[0].due_at for m in tests] == [dt.timedelta(minutes=n) for n in (0, 2, 4)]
    # Nothing counted, nothing of the contact changed.
    assert series_step_counts(workspace=acme, series=branching) == before_counts
    assert (
        Trace.objects.count(),
        Enrollment.objects.count(),
        Message.objects.filter(contact__isnull=False).count(),
    ) == before
    assert Contact.objects.filter(pk=olga.pk).values().get() == olga_row


def test_send_to_me_without_a_contact_uses_the_sample(
    acme: Workspace,
    sink: SmtpServer,
    branching: Series,
    acme_owner: Any,
) -> None:
    client = logged_in(acme_owner)
    answer = client.post(
        f"/series/{branching.pk}/send-to-me/",
        {"to_email": "owner@acme.test", "event_data": "auto", "minutes_apart": 0},
    )
    assert answer.status_code == 302
    messages_send_due()
    mails = sink.to("owner@acme.test")
    assert [m["Subject"] for m in mails] == ["Hello Alex", "Thank you, Alex", "10 % off, Alex"]
    # The editor's sample cart of the trigger's event.
    assert "cart cart-1001" in mails[0].get_body(("plain",)).get_content()


def test_send_to_me_refuses_what_it_cannot_do(
    acme: Workspace, globex: Workspace, sink: SmtpServer, branching: Series, acme_owner: Any
) -> None:
    client = logged_in(acme_owner)
    contact(globex, "gina@globex.test")
    contact(acme, "new@example.com")
    url = f"/series/{branching.pk}/send-to-me/"
    for data, words in (
        ({"to_email": "someone@example.com"}, "Tests go to the team only"),
        ({"to_email": "owner@acme.test", "contact_email": "gina@globex.test"}, "No contact with this address."),
        ({"to_email": "owner@acme.test", "event_data": "enrollment"}, "Choose a contact to use their event data."),
        (
            {"to_email": "owner@acme.test", "contact_email": "new@example.com", "event_data": "trigger"},
            "This contact has no event that triggers this series.",
        ),
        ({"to_email": "owner@acme.test", "minutes_apart": 500}, "Ensure this value is less than or equal to 60."),
        ({"to_email": "not an address"}, "Enter a valid email address."),
    ):
        answer = client.post(url, {"event_data": "auto", "minutes_apart": 2, **data})
        assert answer.status_code == 400 and words in answer.content.decode(), data
    assert not Message.objects.filter(workspace=acme).exists()


def test_send_to_me_can_send_the_draft(
    acme: Workspace,
    sink: SmtpServer,
    branching: Series,
    acme_owner: Any,
) -> None:
    from automations.services import SeriesInput, series_update

    steps = branching.live_version.steps  # type: ignore[union-attr]
    extra = {"key": "again", "type": "send", "template": steps["steps"][0]["template"], "subject": "Once more"}
    thanks = next(step for step in steps["steps"] if step["key"] == "thanks")
    draft = {"steps": [*(s for s in steps["steps"] if s["key"] != "thanks"), {**thanks, "next": "again"}, extra]}
    series_update(workspace=acme, series_id=branching.pk, data=SeriesInput(steps=draft))
    client = logged_in(acme_owner)
    form = client.get(f"/series/{branching.pk}/").context["send_to_me_form"]
    assert "version" in form.fields  # a live version and a draft: the marketer chooses
    data = {"to_email": "owner@acme.test", "event_data": "none", "minutes_apart": 0, "version": "draft"}
    assert client.post(f"/series/{branching.pk}/send-to-me/", data).status_code == 302
    messages_send_due()
    assert [m["Subject"] for m in sink.to("owner@acme.test")] == [
        "Hello Alex",
        "Thank you, Alex",
        "Once more",
        "10 % off, Alex",
    ]


def test_viewers_cannot_send_the_series_to_themselves(acme: Workspace, branching: Series) -> None:
    viewer = logged_in(member(acme, Role.VIEWER, email="vic@acme.test"))
    page = viewer.get(f"/series/{branching.pk}/")
    assert page.status_code == 200 and page.context["send_to_me_form"] is None
    assert "send-to-me" not in page.content.decode()
    assert viewer.get(f"/series/{branching.pk}/send-to-me/").status_code == 403
    answer = viewer.post(f"/series/{branching.pk}/send-to-me/", {"to_email": "vic@acme.test", "minutes_apart": 2})
    assert answer.status_code == 403 and not Message.objects.exists()


def test_the_new_parts_speak_russian(acme: Workspace, history: dict[str, Any]) -> None:
    reader = logged_in(member(acme, Role.MARKETER, email="ru@acme.test", language="ru"))
    series = history["series"]
    html = reader.get(f"/series/{series.pk}/").content.decode()
    assert "Счётчики за" in html and "последние 30 дней" in html and "Отправить мне все письма этой серии" in html
    assert "Цель достигнута здесь: целевое событие (Order Completed)" in html
    people = reader.get(f"/series/{series.pk}/steps/pause/people/?what=waiting").content.decode()
    assert "Сейчас на этом шаге" in people and "хронология" in people
    refused = reader.get(f"/series/{series.pk}/steps/pause/people/?what=all").content.decode()
    assert "Неизвестный список" in refused
