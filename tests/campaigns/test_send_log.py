"""The send log in the browser: the workspace's messages newest first with keyset pages and
filters, per-state counts, one message with its events, links and preview, and the contact
profile's "Messages" section with the engagement summary. Viewers read; other workspaces' rows
are 404 and never listed."""

from __future__ import annotations

import datetime as dt
import sys
import types
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audiences.models import Contact
from campaigns import selectors, views
from campaigns.models import Message, MessageEvent
from campaigns.selectors import MessageFilters, MessageQueryTooBroad, contact_engagement, messages_page
from esp.models import Role, Workspace
from tests.conftest import logged_in
from tests.factories import EmailTemplateFactory, MessageEventFactory, MessageFactory, member

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 6, 15, 12, 0, tzinfo=dt.UTC)


def contact(workspace: Workspace, email: str) -> Contact:
    return Contact.objects.create(workspace=workspace, email=email)


def subjects(filters: MessageFilters, workspace: Workspace) -> list[str]:
    return [m.subject for m in messages_page(workspace=workspace, filters=filters).messages]


@pytest.fixture
def viewer(acme: Workspace) -> Client:
    return logged_in(member(acme, Role.VIEWER, email="viewer@acme.test"))


@pytest.fixture
def log(acme: Workspace, globex: Workspace) -> dict[str, Any]:
    """Six acme messages (ids ascending in this order) and one of globex."""
    welcome = EmailTemplateFactory(workspace=acme, name="Welcome")
    receipt = EmailTemplateFactory(workspace=acme, name="Receipt", message_class="transactional")
    anna = contact(acme, "Anna@Example.com")
    ben = contact(acme, "ben@example.com")
    rows = [
        MessageFactory(contact=anna, template=welcome, subject="m1 welcome anna", source="step:4",
                       created_at=T0 - dt.timedelta(days=10)),
        MessageFactory(contact=ben, template=welcome, subject="m2 welcome ben", source="step:4",
                       state="skipped", reason="quiet_hours", sent_at=None, created_at=T0 - dt.timedelta(days=5)),
        MessageFactory(contact=anna, template=receipt, subject="m3 receipt anna", source="tx:order-1",
                       message_class="transactional", created_at=T0 - dt.timedelta(days=3)),
        MessageFactory(contact=ben, template=None, subject="m4 broadcast ben", source="broadcast:12",
                       state="suppressed", reason="suppressed", sent_at=None, created_at=T0 - dt.timedelta(days=2)),
        # A test send to the marketer's own address: no contact row.
        MessageFactory(contact=None, workspace=acme, to_email="anna@example.com", template=welcome,
                       subject="m5 test to anna's address", source="test:abc", created_at=T0 - dt.timedelta(days=1)),
        MessageFactory(contact=None, workspace=acme, to_email="anna@example.com.au", template=welcome,
                       subject="m6 to another anna", source="test:def", created_at=T0),
    ]  # fmt: skip
    theirs = MessageFactory(
        contact=contact(globex, "anna@example.com"), subject="globexsecretmarker", source="step:4", created_at=T0
    )
    return {"rows": rows, "welcome": welcome, "receipt": receipt, "anna": anna, "ben": ben, "theirs": theirs}


def test_newest_first_with_keyset_pages(
    acme: Workspace, acme_client: Client, log: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "LOG_PAGE_SIZE", 4)
    rows = log["rows"]
    first = acme_client.get("/messages/")
    assert first.status_code == 200
    page = first.content.decode()
    shown = [m.subject for m in first.context["messages_page"]]
    assert shown == ["m6 to another anna", "m5 test to anna's address", "m4 broadcast ben", "m3 receipt anna"]
    assert first.context["next_cursor"] == rows[2].pk
    assert f"before={rows[2].pk}" in page and "globexsecretmarker" not in page
    second = acme_client.get(f"/messages/?before={rows[2].pk}")
    assert [m.subject for m in second.context["messages_page"]] == ["m2 welcome ben", "m1 welcome anna"]
    assert second.context["next_cursor"] is None and "Newest messages" in second.content.decode()
    # A damaged cursor starts at the newest again.
    assert acme_client.get("/messages/?before=x';drop").context["messages_page"][0].subject == "m6 to another anna"


def test_page_shows_the_columns(acme_client: Client, log: dict[str, Any]) -> None:
    page = acme_client.get("/messages/").content.decode()
    m2 = log["rows"][1]
    assert f'href="/messages/{m2.pk}/"' in page
    assert "Delayed by quiet hours" in page and "Skipped" in page  # state and reason
    assert "<code>tx:order-1</code>" in page and "Transactional" in page and "Receipt" in page


def test_filters(acme: Workspace, log: dict[str, Any]) -> None:
    assert subjects(MessageFilters(state="skipped"), acme) == ["m2 welcome ben"]
    assert subjects(MessageFilters(reason="suppressed"), acme) == ["m4 broadcast ben"]
    assert subjects(MessageFilters(message_class="transactional"), acme) == ["m3 receipt anna"]
    assert subjects(MessageFilters(source="step:"), acme) == ["m2 welcome ben", "m1 welcome anna"]
    assert subjects(MessageFilters(source="test:a"), acme) == ["m5 test to anna's address"]
    assert subjects(MessageFilters(template_id=log["receipt"].pk), acme) == ["m3 receipt anna"]
    assert subjects(MessageFilters(template_id=log["welcome"].pk, state="sent"), acme) == [
        "m6 to another anna",
        "m5 test to anna's address",
        "m1 welcome anna",
    ]
    window = MessageFilters(since=T0 - dt.timedelta(days=5), until=T0 - dt.timedelta(days=1))
    assert subjects(window, acme) == ["m4 broadcast ben", "m3 receipt anna", "m2 welcome ben"]  # until excludes m5


def test_recipient_exact_and_prefix(acme: Workspace, log: dict[str, Any]) -> None:
    # Exact, in any case: the contact's messages and the test send to the same address, not
    # the ".au" address nor globex's contact of the same address.
    assert subjects(MessageFilters(email="ANNA@example.com"), acme) == [
        "m5 test to anna's address",
        "m3 receipt anna",
        "m1 welcome anna",
    ]
    assert subjects(MessageFilters(email="anna@ex", email_match="prefix"), acme) == [
        "m6 to another anna",
        "m5 test to anna's address",
        "m3 receipt anna",
        "m1 welcome anna",
    ]
    assert subjects(MessageFilters(email="nobody@example.com"), acme) == []


def test_filters_in_the_page(acme_client: Client, log: dict[str, Any]) -> None:
    response = acme_client.get("/messages/", {"email": "ben@example.com", "state": "suppressed"})
    assert [m.subject for m in response.context["messages_page"]] == ["m4 broadcast ben"]
    response = acme_client.get("/messages/", {"template": str(log["welcome"].pk), "source": "step:"})
    assert [m.subject for m in response.context["messages_page"]] == ["m2 welcome ben", "m1 welcome anna"]
    # A template id of another workspace is not a choice: an error, and nothing listed.
    theirs = EmailTemplateFactory(workspace=log["theirs"].workspace, name="Theirs")
    response = acme_client.get("/messages/", {"template": str(theirs.pk)})
    assert response.context["messages_page"] == [] and response.context["form"].errors["template"]
    response = acme_client.get("/messages/", {"since": "2024-06-10T00:00", "until": "2024-06-01T00:00"})
    assert response.context["messages_page"] == [] and "Must be after the start." in response.content.decode()


def test_state_counts_for_the_filter(
    acme: Workspace, acme_client: Client, log: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = selectors.message_state_counts(workspace=acme, filters=MessageFilters(email="ben@example.com"))
    assert [(c.state, c.count) for c in counts.states] == [("suppressed", 1), ("skipped", 1)]
    assert not counts.capped
    # The state filter itself is left out, so the other states stay in view.
    counts = selectors.message_state_counts(workspace=acme, filters=MessageFilters(state="sent"))
    assert [(c.state, c.count) for c in counts.states] == [("sent", 4), ("suppressed", 1), ("skipped", 1)]
    page = acme_client.get("/messages/", {"state": "sent"}).content.decode()
    assert 'data-state="skipped">Skipped <strong>1</strong>' in page
    # Bounded: only the newest COUNT_CAP + 1 rows are read.
    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    counts = selectors.message_state_counts(workspace=acme, filters=MessageFilters())
    assert counts.capped and sum(c.count for c in counts.states) == 3  # m6, m5, m4
    assert "counted over the newest 2 matching messages" in acme_client.get("/messages/").content.decode()


def test_a_scan_that_runs_too_long_asks_for_a_narrower_filter(
    acme: Workspace, acme_client: Client, log: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "SCAN_TIMEOUT_MS", 20)

    def slow() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(1)")

    with pytest.raises(MessageQueryTooBroad):
        selectors._bounded(MessageFilters(state="failed"), slow)
    with connection.cursor() as cursor:  # the timeout did not outlive the read
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "20ms"

    def too_broad(**kwargs: Any) -> None:
        raise MessageQueryTooBroad

    monkeypatch.setattr(selectors, "messages_page", too_broad)
    page = acme_client.get("/messages/", {"state": "failed"}).content.decode()
    assert "These filters take too long" in page


def test_message_page(acme: Workspace, acme_client: Client, log: dict[str, Any]) -> None:
    message = log["rows"][0]
    Message.objects.filter(pk=message.pk).update(
        links=["https://shop.test/new-arrivals", "https://shop.test/sale"],
        provider_message_id="<abc@mail.test>",
        delivery_status="delivered",
        error="",
        data={"event": {"cart": "C-1"}},
    )
    MessageEventFactory(message=message, type="delivered", occurred_at=T0 - dt.timedelta(days=9, hours=23))
    MessageEventFactory(
        message=message, type="opened", is_machine=True, user_agent="Mozilla/5.0 (AppleMailProxy)",
        occurred_at=T0 - dt.timedelta(days=9, hours=22),
    )  # fmt: skip
    MessageEventFactory(
        message=message, type="clicked", url="https://shop.test/sale?utm_source=esp", user_agent="Firefox/126",
        occurred_at=T0 - dt.timedelta(days=9, hours=21),
    )  # fmt: skip
    response = acme_client.get(f"/messages/{message.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert [e.type for e in response.context["events"]] == ["delivered", "opened", "clicked"]
    assert "machine" in page and "AppleMailProxy" in page and "https://shop.test/sale?utm_source=esp" in page
    assert "https://shop.test/new-arrivals" in page and "&lt;abc@mail.test&gt;" in page
    assert f'href="/audience/contacts/{log["anna"].pk}/"' in page and "Welcome" in page
    assert "C-1" in page  # the data it carried


def test_message_page_shows_why_it_failed(acme: Workspace, acme_client: Client) -> None:
    failed = MessageFactory(
        workspace=acme, state="failed", reason="rejected", error="550 5.1.1 mailbox unknown", sent_at=None
    )
    page = acme_client.get(f"/messages/{failed.pk}/").content.decode()
    assert "Rejected by the provider" in page and "550 5.1.1 mailbox unknown" in page
    assert "The template was deleted: no preview." in page


def test_preview_renders_with_the_content_engine(
    acme: Workspace, acme_client: Client, log: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview hands the renderer the message's contact, event and dead links, and shows
    the result in a frame that runs no script; a template problem is shown instead."""
    seen: dict[str, Any] = {}

    class TemplateProblem(Exception):
        pass

    def contact_as_dict(person: Contact) -> dict[str, Any]:
        return {"email": person.email, "first_name": "Anna"}

    def email_context(*, workspace: Workspace, contact: dict, event: dict, urls: dict) -> dict:
        seen.update(workspace=workspace, contact=contact, event=event, urls=urls)
        return {"contact": contact, "event": event, **urls}

    def render_email(template: Any, context: dict) -> Any:
        if template.name == "Broken":
            raise TemplateProblem("line 3: unknown tag 'load'")
        return types.SimpleNamespace(
            subject=f"Hi {context['contact']['first_name']}",
            preheader="",
            html=f"<p>Cart {context['event'].get('cart')}</p><script>alert(1)</script>",
            text="Hi",
        )

    rendering = types.ModuleType("campaigns.content.rendering")
    rendering.contact_as_dict = contact_as_dict  # type: ignore[attr-defined]
    rendering.email_context = email_context  # type: ignore[attr-defined]
    rendering.render_email = render_email  # type: ignore[attr-defined]
    rendering.render_as_sent = lambda template, context, version_id, subject="": render_email(template, context)  # type: ignore[attr-defined]
    errors = types.ModuleType("campaigns.content.errors")
    errors.TemplateProblem = TemplateProblem  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "campaigns.content.rendering", rendering)
    monkeypatch.setitem(sys.modules, "campaigns.content.errors", errors)

    message = log["rows"][0]
    Message.objects.filter(pk=message.pk).update(data={"event": {"cart": "C-7"}})
    page = acme_client.get(f"/messages/{message.pk}/").content.decode()
    assert seen["contact"] == {"email": "Anna@Example.com", "first_name": "Anna"} and seen["event"] == {"cart": "C-7"}
    assert set(seen["urls"].values()) == {"#"}  # a click in the preview unsubscribes nobody
    assert "Hi Anna" in page
    assert '<iframe class="mail-preview" sandbox title="Preview" srcdoc="&lt;p&gt;Cart C-7&lt;/p&gt;' in page

    # A test send renders for the sample contact it carried.
    test_send = log["rows"][4]
    Message.objects.filter(pk=test_send.pk).update(data={"contact": {"first_name": "Sample"}, "test": True})
    assert "Hi Sample" in acme_client.get(f"/messages/{test_send.pk}/").content.decode()

    broken = MessageFactory(workspace=acme, template=EmailTemplateFactory(workspace=acme, name="Broken"))
    page = acme_client.get(f"/messages/{broken.pk}/").content.decode()
    assert "The template cannot be rendered now:" in page and "line 3: unknown tag" in page
    assert "<iframe" not in page


def test_viewer_reads_the_log(viewer: Client, log: dict[str, Any]) -> None:
    assert viewer.get("/messages/").status_code == 200
    assert viewer.get(f"/messages/{log['rows'][0].pk}/").status_code == 200
    assert viewer.get(f"/messages/contact/{log['anna'].pk}/").status_code == 200
    assert 'href="/messages/"' in viewer.get("/").content.decode()  # in the menu


def test_another_workspace_message_is_404(acme_client: Client, log: dict[str, Any]) -> None:
    theirs = log["theirs"]
    assert acme_client.get(f"/messages/{theirs.pk}/").status_code == 404
    assert acme_client.get(f"/messages/contact/{theirs.contact_id}/").status_code == 404
    for query in ("", "?email=anna@example.com", "?source=step:", f"?before={theirs.pk + 1}"):
        assert "globexsecretmarker" not in acme_client.get(f"/messages/{query}").content.decode()


# --- the profile ----------------------------------------------------------------------------


def test_profile_loads_the_messages_section(acme_client: Client, log: dict[str, Any]) -> None:
    page = acme_client.get(f"/audience/contacts/{log['anna'].pk}/").content.decode()
    assert f'hx-get="/messages/contact/{log["anna"].pk}/"' in page and 'hx-trigger="load"' in page


def test_profile_messages_and_engagement(acme: Workspace, acme_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "PROFILE_PAGE_SIZE", 2)
    cara = contact(acme, "cara@example.com")
    sent = [MessageFactory(contact=cara, subject=f"c{n}", created_at=T0 + dt.timedelta(hours=n)) for n in range(1, 6)]
    # c1 delivered and opened twice by a person (and once by a machine later); c2 delivered,
    # a machine open only, then clicked; c3 bounced; c4 complained; c5 still queued.
    Message.objects.filter(pk__in=[sent[0].pk, sent[1].pk]).update(delivered_at=T0, delivery_status="delivered")
    Message.objects.filter(pk=sent[0].pk).update(opened_at=T0 + dt.timedelta(hours=2))
    Message.objects.filter(pk=sent[1].pk).update(clicked_at=T0 + dt.timedelta(hours=5))
    Message.objects.filter(pk=sent[2].pk).update(bounced_at=T0, delivery_status="bounced")
    Message.objects.filter(pk=sent[3].pk).update(complained_at=T0, delivery_status="complained")
    Message.objects.filter(pk=sent[4].pk).update(state="queued", sent_at=None)
    MessageEventFactory(message=sent[0], type="opened", occurred_at=T0 + dt.timedelta(hours=2))
    MessageEventFactory(message=sent[0], type="opened", occurred_at=T0 + dt.timedelta(hours=6))
    MessageEventFactory(message=sent[0], type="opened", occurred_at=T0 + dt.timedelta(hours=9), is_machine=True)
    MessageEventFactory(message=sent[1], type="opened", occurred_at=T0 + dt.timedelta(hours=3), is_machine=True)
    MessageEventFactory(message=sent[1], type="clicked", occurred_at=T0 + dt.timedelta(hours=5))
    other = contact(acme, "other@example.com")
    MessageEventFactory(message=MessageFactory(contact=other), type="opened", occurred_at=T0 + dt.timedelta(days=9))

    engagement = contact_engagement(workspace=acme, contact_id=cara.pk)
    assert (engagement.messages, engagement.sent, engagement.delivered) == (5, 4, 2)
    assert (engagement.opened, engagement.clicked, engagement.bounced, engagement.complained) == (1, 1, 1, 1)
    assert engagement.last_opened_at == T0 + dt.timedelta(hours=6)  # the machine's later open left out
    assert engagement.last_clicked_at == T0 + dt.timedelta(hours=5)

    with CaptureQueriesContext(connection) as queries:
        response = acme_client.get(f"/messages/contact/{cara.pk}/")
    reads = [q["sql"] for q in queries if "campaigns_message" in q["sql"]]
    assert len(reads) == 3  # the summary (messages, then events) and the first page
    html = response.content.decode()
    assert [m.subject for m in response.context["message_rows"]] == ["c5", "c4"]
    assert 'data-stat="sent">4<' in html and 'data-stat="opened">1<' in html and 'data-stat="bounced">1<' in html
    assert "Older messages" in html
    cursor = response.context["messages_next"]
    older = acme_client.get(f"/messages/contact/{cara.pk}/", {"cursor": cursor})
    assert [m.subject for m in older.context["message_rows"]] == ["c3", "c2"]
    assert "contact-engagement" not in older.content.decode()  # only rows replace the button
    last = acme_client.get(f"/messages/contact/{cara.pk}/", {"cursor": older.context["messages_next"]})
    assert [m.subject for m in last.context["message_rows"]] == ["c1"] and "Older messages" not in last.content.decode()


def test_profile_without_messages(acme: Workspace, acme_client: Client) -> None:
    dora = contact(acme, "dora@example.com")
    html = acme_client.get(f"/messages/contact/{dora.pk}/").content.decode()
    assert "No messages yet." in html and 'data-stat="sent">0<' in html and "never" in html
    assert MessageEvent.objects.count() == 0


def test_preview_with_the_real_renderer(acme: Workspace, acme_client: Client) -> None:
    pytest.importorskip("campaigns.content.rendering")
    template = EmailTemplateFactory(
        workspace=acme,
        name="Cart",
        subject="Your cart, {{ contact.first_name|default:'friend' }}",
        use_layout=False,
        mjml=(
            "<mjml><mj-body><mj-section><mj-column><mj-text>Cart {{ event.cart }} for {{ contact.first_name }}"
            '</mj-text><mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a>'
            " {{ workspace.postal_address }}</mj-text>"
            "</mj-column></mj-section></mj-body></mjml>"
        ),
    )
    anna = Contact.objects.create(workspace=acme, email="anna@example.com", first_name="Anna")
    message = MessageFactory(contact=anna, template=template, data={"event": {"cart": "C-42"}})
    page = acme_client.get(f"/messages/{message.pk}/").content.decode()
    assert "Your cart, Anna" in page
    frame = page.split('srcdoc="', 1)[1].split('"', 1)[0]
    assert frame.startswith("&lt;!doctype html&gt;")  # the whole mail inside the attribute
    assert "Cart C-42 for Anna" in frame and "href=&quot;#&quot;" in frame

    # The renderer's output is HTML marked safe: a contact's data must still not reach the page.
    Contact.objects.filter(pk=anna.pk).update(first_name='"><script>alert(1)</script>')
    page = acme_client.get(f"/messages/{message.pk}/").content.decode()
    assert "<script>alert(1)" not in page
