"""The broadcast pages through the Django client: the composer (errors on their fields, nothing
typed lost, times in the workspace's zone), the live count and the review's warnings, the
actions with their confirmations, the preview and test, the report with its click map, the
viewer who only reads, and another workspace's broadcast as a 404."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audiences.models import Contact, MailingList, Segment, Subscription, SubscriptionStatus
from campaigns.broadcasts import page_data, services
from campaigns.broadcasts.services import BroadcastInput
from campaigns.models import Broadcast, BroadcastStatus, EmailTemplate, Message, MessageSource
from esp.models import Role, Workspace
from tests.conftest import logged_in
from tests.factories import EmailTemplateFactory, MessageEventFactory, member

pytestmark = pytest.mark.usefixtures("clock")


def subscriber(workspace: Workspace, email: str, mailing_list: MailingList, **fields: Any) -> Contact:
    contact = Contact.objects.create(workspace=workspace, email=email, **fields)
    Subscription.objects.create(
        workspace=workspace, contact=contact, mailing_list=mailing_list, status=SubscriptionStatus.SUBSCRIBED
    )
    return contact


@pytest.fixture
def news(acme: Workspace) -> MailingList:
    news = MailingList.objects.create(workspace=acme, name="News")
    subscriber(acme, "ann@example.com", news, first_name="Ann", tags=["vip"])
    subscriber(acme, "bob@example.com", news, first_name="Bob")
    return news


@pytest.fixture
def sale(acme: Workspace) -> EmailTemplate:
    return EmailTemplateFactory(workspace=acme, name="Sale", subject="Sale for {{ contact.first_name }}")


def _form(**fields: Any) -> dict[str, Any]:
    return {"name": "Autumn sale", "send_mode": "now", "priority": "10", **fields}


def _draft(workspace: Workspace, template: EmailTemplate, lists: list[int], **fields: Any) -> Broadcast:
    data = BroadcastInput(name="Autumn sale", template=template.pk, include_lists=lists, **fields)
    return services.broadcast_create(workspace=workspace, data=data)


def test_the_composer_creates_a_draft(
    acme: Workspace, acme_client: Client, news: MailingList, sale: EmailTemplate
) -> None:
    acme.time_zone = "Europe/Sofia"
    acme.save()
    response = acme_client.post(
        "/broadcasts/new/",
        _form(
            include_lists=[news.pk],
            include_tags=["vip"],
            template=sale.pk,
            subject="Only today",
            send_mode="at",
            send_at="2031-03-01T10:00",
            local_at="2031-03-02T09:30",
            throttle_hours="4",
        ),
    )
    broadcast = Broadcast.objects.get(workspace=acme)
    assert response.status_code == 302 and response["Location"] == f"/broadcasts/{broadcast.pk}/"
    assert broadcast.status == BroadcastStatus.DRAFT
    assert (broadcast.include_lists, broadcast.include_tags, broadcast.template_id) == ([news.pk], ["vip"], sale.pk)
    assert broadcast.subject == "Only today" and broadcast.throttle_hours == 4
    # Read in the workspace's zone (UTC+2 in March); the local time kept as a wall clock.
    assert broadcast.send_at == dt.datetime(2031, 3, 1, 8, 0, tzinfo=dt.UTC)
    assert broadcast.local_at == dt.datetime(2031, 3, 2, 9, 30, tzinfo=dt.UTC)
    page = acme_client.get(f"/broadcasts/{broadcast.pk}/edit/").content.decode()
    assert 'value="2031-03-01T10:00"' in page and 'value="2031-03-02T09:30"' in page


def test_refused_input_keeps_what_was_typed(
    acme: Workspace, globex: Workspace, acme_client: Client, news: MailingList, sale: EmailTemplate
) -> None:
    foreign = MailingList.objects.create(workspace=globex, name="Theirs")
    response = acme_client.post(
        "/broadcasts/new/",
        _form(name="", subject="Typed subject", include_lists=[news.pk, foreign.pk], throttle_hours="500"),
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"name", "include_lists", "throttle_hours"}
    assert 'value="Typed subject"' in response.content.decode()
    assert not Broadcast.objects.exists()


def test_service_errors_land_on_their_fields(
    acme: Workspace, acme_client: Client, news: MailingList, sale: EmailTemplate, clock: Any
) -> None:
    broadcast = _draft(acme, sale, [news.pk], send_mode="at", send_at=clock.now() + dt.timedelta(days=1))
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    past = (clock.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = acme_client.post(
        f"/broadcasts/{broadcast.pk}/edit/",
        _form(include_lists=[news.pk], template=sale.pk, send_mode="at", send_at=past, subject="Kept"),
    )
    assert response.status_code == 400
    assert response.context["form"].errors["send_at"] == ["Choose a moment in the future."]
    assert 'value="Kept"' in response.content.decode()
    broadcast.refresh_from_db()
    assert broadcast.subject == "" and broadcast.status == BroadcastStatus.SCHEDULED


def test_sender_and_provider_go_back_to_the_default(acme: Workspace, acme_client: Client, sale: EmailTemplate) -> None:
    from campaigns.providers.services import sender_create

    sender = sender_create(workspace=acme, from_name="Acme", from_email="news@acme.test")
    response = acme_client.post("/broadcasts/new/", _form(template=sale.pk, sender=sender.pk))
    broadcast = Broadcast.objects.get(workspace=acme)
    assert response.status_code == 302 and broadcast.sender_id == sender.pk
    acme_client.post(f"/broadcasts/{broadcast.pk}/edit/", _form(template=sale.pk, sender=""))
    broadcast.refresh_from_db()
    assert broadcast.sender_id is None


def test_live_count_and_warnings(
    acme: Workspace, acme_client: Client, news: MailingList, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscriber(acme, "cat@example.com", news, tags=["wholesale"])
    Contact.objects.create(workspace=acme, email="dan@example.com", tags=["vip"])  # no consent
    empty = Segment.objects.create(
        workspace=acme,
        name="Nobody",
        rules={"conditions": [{"kind": "attribute", "field": "country", "operator": "eq", "value": "DE"}]},
    )
    response = acme_client.get(
        "/broadcasts/count/",
        {"include_lists": news.pk, "include_tags": "vip", "exclude_tags": "wholesale", "include_segments": empty.pk},
    )
    assert response.status_code == 200
    figures = response.context["count"]
    assert (figures.matching, figures.without_consent, figures.suppressed, figures.recipients) == (3, 1, 0, 2)
    assert [w.key for w in response.context["warnings"]] == ["empty_segment"]
    assert "The segment “Nobody” is empty now." in response.content.decode()

    monkeypatch.setattr(page_data, "LARGE_AUDIENCE", 2)
    acme.postal_address = ""
    acme.save()
    keys = [w.key for w in acme_client.get("/broadcasts/count/", {"include_lists": news.pk}).context["warnings"]]
    assert keys == ["postal_address", "cold_audience"]
    ann = Contact.objects.get(email="ann@example.com")
    Message.objects.create(workspace=acme, contact=ann, source="demo:x", to_email=ann.email)
    keys = [w.key for w in acme_client.get("/broadcasts/count/", {"include_lists": news.pk}).context["warnings"]]
    assert keys == ["postal_address"]  # mailed before: not a cold audience


def test_live_count_refuses_another_workspaces_list(acme_client: Client, globex: Workspace) -> None:
    theirs = MailingList.objects.create(workspace=globex, name="Theirs")
    response = acme_client.get("/broadcasts/count/", {"include_lists": theirs.pk})
    assert response.status_code == 400
    assert acme_client.get("/broadcasts/count/", {"include_lists": "x"}).status_code == 400


def test_send_now_with_its_confirmation(
    acme: Workspace, acme_client: Client, news: MailingList, sale: EmailTemplate
) -> None:
    broadcast = _draft(acme, sale, [news.pk])
    confirm = acme_client.get(f"/broadcasts/{broadcast.pk}/schedule/")
    assert confirm.status_code == 200
    assert "Send “Autumn sale” to 2 recipients?" in confirm.content.decode()
    response = acme_client.post(f"/broadcasts/{broadcast.pk}/schedule/")
    assert response.status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING and broadcast.recipients == 2
    page = acme_client.get(f"/broadcasts/{broadcast.pk}/")
    assert page.context["polling"] and page.context["figures"].queued == 2
    assert 'hx-trigger="every 3s"' in page.content.decode()
    # Once sending, the composer only shows its settings; a save is refused.
    locked = acme_client.get(f"/broadcasts/{broadcast.pk}/edit/")
    assert locked.status_code == 200 and 'id="composer-locked"' in locked.content.decode()
    assert 'id="save-and-schedule"' not in locked.content.decode()
    refused = acme_client.post(f"/broadcasts/{broadcast.pk}/edit/", _form(name="Changed"), follow=True)
    assert "duplicate it instead" in refused.content.decode()
    broadcast.refresh_from_db()
    assert broadcast.name == "Autumn sale"

    assert acme_client.post(f"/broadcasts/{broadcast.pk}/pause/").status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.PAUSED
    acme_client.post(f"/broadcasts/{broadcast.pk}/resume/")
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SENDING
    assert "Cancel “Autumn sale” for good?" in acme_client.get(f"/broadcasts/{broadcast.pk}/cancel/").content.decode()
    acme_client.post(f"/broadcasts/{broadcast.pk}/cancel/")
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.CANCELLED
    live = acme_client.get(f"/broadcasts/{broadcast.pk}/live/")
    assert not live.context["polling"] and "hx-trigger" not in live.content.decode()
    assert "The broadcast was cancelled: <strong>2</strong>" in live.content.decode()


def test_a_refused_schedule_says_why(acme: Workspace, acme_client: Client, sale: EmailTemplate) -> None:
    broadcast = _draft(acme, sale, [])
    response = acme_client.post(f"/broadcasts/{broadcast.pk}/schedule/")
    assert response.status_code == 400
    assert "Choose who gets it: at least one list, segment or tag." in response.content.decode()
    # A refused action on the page: a message, not an error page.
    response = acme_client.post(f"/broadcasts/{broadcast.pk}/pause/", follow=True)
    assert "Only a broadcast that is sending can be paused." in response.content.decode()


def test_back_to_draft_and_duplicate(
    acme: Workspace, acme_client: Client, news: MailingList, sale: EmailTemplate, clock: Any
) -> None:
    broadcast = _draft(acme, sale, [news.pk], send_mode="at", send_at=clock.now() + dt.timedelta(days=2))
    acme_client.post(f"/broadcasts/{broadcast.pk}/schedule/")
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SCHEDULED
    acme_client.post(f"/broadcasts/{broadcast.pk}/unschedule/")
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.DRAFT
    response = acme_client.post(f"/broadcasts/{broadcast.pk}/duplicate/")
    copy = Broadcast.objects.exclude(pk=broadcast.pk).get(workspace=acme)
    assert response["Location"] == f"/broadcasts/{copy.pk}/edit/"
    assert copy.name == "Autumn sale (copy)" and copy.include_lists == [news.pk]


def test_preview_as_a_recipient_and_a_test_to_me(
    acme: Workspace, acme_client: Client, acme_owner: Any, news: MailingList, sale: EmailTemplate
) -> None:
    broadcast = _draft(acme, sale, [news.pk], subject="Just for {{ contact.first_name }}")
    response = acme_client.get(f"/broadcasts/{broadcast.pk}/preview/", {"contact": "ann@example.com"})
    assert response.context["preview"].rendered.subject == "Just for Ann"
    response = acme_client.get(f"/broadcasts/{broadcast.pk}/preview/", {"contact": "nobody@example.com"})
    assert "No contact with the address nobody@example.com." in response.content.decode()
    # The composer's preview of a template not saved on a broadcast yet.
    response = acme_client.get("/broadcasts/preview/", {"template": sale.pk, "contact": "bob@example.com"})
    assert response.context["preview"].rendered.subject == "Sale for Bob"

    acme_client.post(f"/broadcasts/{broadcast.pk}/test/", {"contact": "ann@example.com"})
    test = Message.objects.get(workspace=acme, source__startswith="test:")
    assert test.to_email == acme_owner.email and test.subject_override == "Just for {{ contact.first_name }}"


def test_the_report(acme: Workspace, acme_client: Client, news: MailingList, sale: EmailTemplate) -> None:
    broadcast = _draft(acme, sale, [news.pk])
    services.broadcast_schedule(workspace=acme, broadcast_id=broadcast.pk)
    ann, bob = Message.objects.filter(source=str(MessageSource.broadcast(broadcast.pk))).order_by("to_email")
    now = dt.datetime.now(tz=dt.UTC)
    Message.objects.filter(pk__in=[ann.pk, bob.pk]).update(state="sent", sent_at=now, delivered_at=now)
    Message.objects.filter(pk=ann.pk).update(opened_at=now, clicked_at=now)
    for url, link, machine in (("https://shop.test/sale", 0, False), ("https://shop.test/sale", 0, False),
                               ("https://shop.test/shoes", 2, False), ("https://shop.test/scan", 1, True)):  # fmt: skip
        MessageEventFactory(message=ann, type="clicked", url=url, is_machine=machine, details={"link": link})
    services.broadcasts_tick()
    response = acme_client.get(f"/broadcasts/{broadcast.pk}/")
    figures = response.context["figures"]
    assert (figures.sent, figures.delivered, figures.opened, figures.clicked) == (2, 2, 1, 1)
    clicks = [(c.url, c.position, c.clicks, c.clickers) for c in response.context["clicks"]]
    assert clicks == [("https://shop.test/sale", 0, 2, 1), ("https://shop.test/shoes", 2, 1, 1)]
    assert response.context["open_rate"] == 50.0
    page = response.content.decode()
    assert 'id="click-map"' in page and "https://shop.test/scan" not in page
    listing = acme_client.get("/broadcasts/")
    assert listing.context["rows"][0]["open_rate"] == 50.0 and "50.0 %" in listing.content.decode()


def test_a_viewer_reads_and_changes_nothing(acme: Workspace, news: MailingList, sale: EmailTemplate) -> None:
    broadcast = _draft(acme, sale, [news.pk])
    viewer = logged_in(member(acme, Role.VIEWER, email="viewer@acme.test"))
    page = viewer.get(f"/broadcasts/{broadcast.pk}/")
    assert page.status_code == 200 and 'id="broadcast-actions"' not in page.content.decode()
    assert viewer.get("/broadcasts/").status_code == 200
    assert viewer.get(f"/broadcasts/{broadcast.pk}/preview/").status_code == 200
    # The composer reads (as a series' or segment's form does), without a way to save.
    for url in ("/broadcasts/new/", f"/broadcasts/{broadcast.pk}/edit/"):
        composer = viewer.get(url)
        assert composer.status_code == 200 and "Save draft" not in composer.content.decode()
        assert all(field.disabled for field in composer.context["form"].fields.values())
    assert viewer.get(f"/broadcasts/{broadcast.pk}/schedule/").status_code == 403
    for action in ("schedule", "pause", "cancel", "duplicate", "test", "edit"):
        assert viewer.post(f"/broadcasts/{broadcast.pk}/{action}/").status_code == 403
    assert viewer.post("/broadcasts/new/", _form()).status_code == 403
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.DRAFT and Broadcast.objects.count() == 1


def test_two_workspaces(acme: Workspace, globex: Workspace, acme_client: Client, sale: EmailTemplate) -> None:
    theirs_list = MailingList.objects.create(workspace=globex, name="Globex list")
    theirs = _draft(globex, EmailTemplateFactory(workspace=globex, name="Globex mail"), [theirs_list.pk])
    theirs.name = "Globex secret sale"
    theirs.save()
    for url in ("", "edit/", "live/", "preview/", "schedule/", "cancel/"):
        assert acme_client.get(f"/broadcasts/{theirs.pk}/{url}").status_code == 404
    assert acme_client.post(f"/broadcasts/{theirs.pk}/schedule/").status_code == 404
    assert acme_client.get("/broadcasts/preview/", {"template": theirs.template_id}).status_code == 404
    assert "Globex" not in acme_client.get("/broadcasts/").content.decode()
    composer = acme_client.get("/broadcasts/new/").content.decode()
    assert "Globex list" not in composer and "Globex mail" not in composer
    theirs.refresh_from_db()
    assert theirs.status == BroadcastStatus.DRAFT


def test_the_list_pages_by_keyset(
    acme: Workspace, acme_client: Client, sale: EmailTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaigns.broadcasts import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    made = [services.broadcast_create(workspace=acme, data=BroadcastInput(name=f"B{n}")) for n in range(3)]
    first = acme_client.get("/broadcasts/")
    assert [r["broadcast"].name for r in first.context["rows"]] == ["B2", "B1"]
    second = acme_client.get("/broadcasts/", {"before": first.context["next_before"]})
    assert [r["broadcast"].name for r in second.context["rows"]] == ["B0"] and second.context["next_before"] is None
    assert made and acme_client.get("/broadcasts/", {"before": "junk"}).status_code == 200


def test_local_time_in_words(acme: Workspace, sale: EmailTemplate) -> None:
    acme.time_zone = "Europe/Sofia"
    broadcast = _draft(acme, sale, [], send_mode="local", local_at=dt.datetime(2031, 5, 6, 10, 0), throttle_hours=3)
    text = page_data.schedule_text(broadcast, acme)
    assert "10 a.m." in text and "each contact's time zone (Europe/Sofia" in text and "spread over 3 h" in text
    assert zoneinfo.ZoneInfo("Europe/Sofia") == acme.zone


def test_the_page_says_who_the_snapshot_left_out(
    acme: Workspace, acme_client: Client, news: MailingList, sale: EmailTemplate
) -> None:
    broadcast = _draft(acme, sale, [news.pk])
    Broadcast.objects.filter(pk=broadcast.pk).update(
        status=BroadcastStatus.SENT, started_at=timezone.now(), excluded={"no_consent": 3, "suppressed": 2}
    )
    html = acme_client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert "3 without consent" in html and "2 suppressed or without an address" in html
