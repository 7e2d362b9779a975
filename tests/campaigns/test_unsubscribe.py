"""Unsubscribe: a GET only asks (mail clients prefetch), a cookie-less POST (RFC 8058
one-click) unsubscribes from the message's list or from all marketing, with consent records,
once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from audiences.models import ConsentRecord, Contact, MailingList, Subscription, Suppression
from audiences.services import ConsentContext, contact_save, list_save, subscription_subscribe
from campaigns.models import Message, MessageEvent
from campaigns.tracking.tokens import message_token
from esp.models import Workspace

ONE_CLICK = "List-Unsubscribe=One-Click"
GMAIL_UA = "Mozilla/5.0 (compatible; Google-List-Unsubscribe)"


@pytest.fixture
def anna(acme: Workspace) -> Contact:
    return contact_save(workspace=acme, data={"email": "anna.smith@example.com", "first_name": "Anna"})[0]


@pytest.fixture
def news(acme: Workspace) -> MailingList:
    return list_save(workspace=acme, data={"name": "Weekly news", "double_opt_in": False})


@pytest.fixture
def deals(acme: Workspace) -> MailingList:
    return list_save(workspace=acme, data={"name": "Deals", "double_opt_in": False})


def subscribe(contact: Contact, mailing_list: MailingList) -> None:
    subscription_subscribe(
        workspace=contact.workspace, contact=contact, mailing_list=mailing_list, context=ConsentContext("admin")
    )


def status(contact: Contact, mailing_list: MailingList) -> str:
    return Subscription.objects.get(contact=contact, mailing_list=mailing_list).status


def message_to(
    contact: Contact | None,
    mailing_list: MailingList | None = None,
    *,
    workspace: Workspace | None = None,
    **fields: object,
) -> Message:
    owner = contact.workspace if contact else workspace
    assert owner is not None
    return Message.objects.create(
        workspace=owner,
        contact=contact,
        source=str(fields.pop("source", "broadcast:1")),
        to_email=contact.email if contact else "",
        mailing_list=mailing_list,
        state="sent",
        sent_at=timezone.now() - dt.timedelta(hours=1),
        **fields,
    )


def one_click(token: str) -> Client:
    """What Gmail does: a POST with the RFC 8058 body, no cookies, no CSRF token."""
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        f"/e/u/{token}", ONE_CLICK, content_type="application/x-www-form-urlencoded", HTTP_USER_AGENT=GMAIL_UA
    )
    assert response.status_code == 200, response.content
    assert not client.cookies or "sessionid" not in client.cookies
    return client


@pytest.mark.django_db
def test_get_only_asks_and_changes_nothing(anna: Contact, news: MailingList) -> None:
    subscribe(anna, news)
    message = message_to(anna, news)
    consents = ConsentRecord.objects.count()
    response = Client().get(f"/e/u/{message_token(message.pk)}", HTTP_USER_AGENT="Barracuda Sentinel")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Unsubscribe a•••@example.com from Weekly news?" in page
    assert "anna.smith" not in page and 'method="post"' in page and "csrfmiddlewaretoken" not in page
    assert "1 Market Street, Springfield" in page and "Acme" in page
    assert status(anna, news) == "subscribed"
    assert ConsentRecord.objects.count() == consents
    assert not MessageEvent.objects.exists()
    message.refresh_from_db()
    assert message.unsubscribed_at is None


@pytest.mark.django_db
def test_one_click_post_without_cookies_unsubscribes_from_the_list(
    anna: Contact, news: MailingList, deals: MailingList
) -> None:
    subscribe(anna, news)
    subscribe(anna, deals)
    message = message_to(anna, news)
    one_click(message_token(message.pk))
    assert status(anna, news) == "unsubscribed" and status(anna, deals) == "subscribed"
    record = ConsentRecord.objects.filter(action="unsubscribed").get()
    assert (record.contact_id, record.mailing_list_id, record.source, record.ip_address, record.user_agent) == (
        anna.pk,
        news.pk,
        "form",
        "127.0.0.1",
        GMAIL_UA,
    )
    assert "One-Click" in record.text_shown
    event = MessageEvent.objects.get(message=message)
    assert (event.type, event.details) == ("unsubscribed", {"scope": "list", "lists": [news.pk]})
    message.refresh_from_db()
    assert message.unsubscribed_at == event.occurred_at
    assert not Suppression.objects.exists()  # a list unsubscribe is not a suppression

    # Idempotent: a second POST (mailbox retry) changes nothing and answers 200 again.
    one_click(message_token(message.pk))
    assert ConsentRecord.objects.filter(action="unsubscribed").count() == 1
    assert MessageEvent.objects.filter(message=message).count() == 1


@pytest.mark.django_db
def test_the_page_button_unsubscribes_with_the_question_as_consent_text(anna: Contact, news: MailingList) -> None:
    subscribe(anna, news)
    message = message_to(anna, news)
    client = Client(enforce_csrf_checks=True)
    response = client.post(f"/e/u/{message_token(message.pk)}", {"List-Unsubscribe": "One-Click", "confirm": "1"})
    assert response.status_code == 200
    assert "a•••@example.com will no longer receive Weekly news." in response.content.decode()
    record = ConsentRecord.objects.get(action="unsubscribed")
    assert record.text_shown == "Unsubscribe a•••@example.com from Weekly news?"
    assert status(anna, news) == "unsubscribed"


@pytest.mark.django_db
def test_a_message_without_a_list_unsubscribes_from_all_marketing(
    acme: Workspace, anna: Contact, news: MailingList, deals: MailingList
) -> None:
    subscribe(anna, news)
    subscribe(anna, deals)
    message = message_to(anna, None, source="step:4")
    page = Client().get(f"/e/u/{message_token(message.pk)}").content.decode()
    assert "Unsubscribe a•••@example.com from all marketing emails of Acme?" in page
    one_click(message_token(message.pk))
    assert status(anna, news) == status(anna, deals) == "unsubscribed"
    suppression = Suppression.objects.get()
    assert (suppression.workspace_id, suppression.email, suppression.reason) == (acme.pk, anna.email, "unsubscribed")
    records = ConsentRecord.objects.filter(action="unsubscribed").order_by("id")
    assert sorted((r.mailing_list_id or 0) for r in records) == sorted([news.pk, deals.pk, 0])
    event = MessageEvent.objects.get(message=message)
    assert event.details["scope"] == "all" and sorted(event.details["lists"]) == sorted([news.pk, deals.pk])
    one_click(message_token(message.pk))
    assert Suppression.objects.count() == 1 and ConsentRecord.objects.filter(action="unsubscribed").count() == 3


@pytest.mark.django_db
def test_a_list_the_contact_is_not_on_falls_back_to_all(anna: Contact, news: MailingList) -> None:
    message = message_to(anna, news)  # removed from the list since, say
    one_click(message_token(message.pk))
    assert Suppression.objects.get().reason == "unsubscribed"


@pytest.mark.django_db
def test_erased_contact_and_test_messages_have_nothing_to_unsubscribe(acme: Workspace, anna: Contact) -> None:
    erased = message_to(None, workspace=acme)
    test = message_to(anna, source="test:abc", data={"test": True})
    for message in (erased, test):
        page = Client().get(f"/e/u/{message_token(message.pk)}").content.decode()
        assert "nothing to unsubscribe" in page and "<form" not in page
        one_click(message_token(message.pk))
    assert not Suppression.objects.exists() and not MessageEvent.objects.exists()


@pytest.mark.django_db
def test_forged_unsubscribe_token_is_a_404_and_changes_nothing(anna: Contact, news: MailingList) -> None:
    subscribe(anna, news)
    message = message_to(anna, news)
    token = message_token(message.pk)
    forged = token[:-1] + ("x" if token[-1] != "x" else "y")
    assert Client().get(f"/e/u/{forged}").status_code == 404
    response = Client(enforce_csrf_checks=True).post(
        f"/e/u/{forged}", ONE_CLICK, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 404 and b"This link is not valid" in response.content
    assert status(anna, news) == "subscribed"


@pytest.mark.django_db
def test_the_list_unsubscribe_header_is_the_url_that_unsubscribes(
    settings: object, anna: Contact, news: MailingList
) -> None:
    from campaigns.tracking.headers import compliance_headers, message_urls

    settings.PUBLIC_BASE_URL = "https://mail.acme.test"  # type: ignore[attr-defined]
    subscribe(anna, news)
    message = message_to(anna, news)
    headers = compliance_headers(message, message_urls(message))
    assert headers["List-Unsubscribe-Post"] == ONE_CLICK
    url = headers["List-Unsubscribe"].removeprefix("<").removesuffix(">")
    assert url.startswith("https://mail.acme.test/e/u/")
    one_click(url.removeprefix("https://mail.acme.test/e/u/"))
    assert status(anna, news) == "unsubscribed"
