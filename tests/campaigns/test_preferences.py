"""The preference center: the person's lists and the public ones, per-list choices and
"unsubscribe from all", through audiences' services with consent records; CSRF protected."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from audiences.models import ConsentRecord, Contact, MailingList, Subscription, Suppression
from audiences.services import ConsentContext, contact_save, list_save, subscription_subscribe, suppression_add
from campaigns.models import Message, MessageEvent
from campaigns.tracking.tokens import message_token
from esp.models import OutboxMessage, Workspace

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"


@pytest.fixture
def anna(acme: Workspace) -> Contact:
    return contact_save(workspace=acme, data={"email": "anna@example.com"})[0]


@pytest.fixture
def lists(acme: Workspace, globex: Workspace) -> dict[str, MailingList]:
    return {
        "news": list_save(workspace=acme, data={"name": "News", "is_public": True, "double_opt_in": False}),
        "deals": list_save(workspace=acme, data={"name": "Deals", "is_public": True, "double_opt_in": False}),
        "vip": list_save(workspace=acme, data={"name": "VIP club", "is_public": False, "double_opt_in": False}),
        "staff": list_save(workspace=acme, data={"name": "Staff only", "is_public": False}),
        "letters": list_save(workspace=acme, data={"name": "Letters", "is_public": True, "double_opt_in": True}),
        "globex": list_save(workspace=globex, data={"name": "Globex public", "is_public": True}),
    }


def subscribe(contact: Contact, mailing_list: MailingList) -> None:
    subscription_subscribe(
        workspace=contact.workspace, contact=contact, mailing_list=mailing_list, context=ConsentContext("admin")
    )


def statuses(contact: Contact) -> dict[str, str]:
    return dict(Subscription.objects.filter(contact=contact).values_list("mailing_list__name", "status"))


def message_of(contact: Contact) -> Message:
    return Message.objects.create(
        workspace=contact.workspace, contact=contact, source="step:1", to_email=contact.email, state="sent"
    )


def checked(page: str) -> dict[str, bool]:
    """List name -> whether its checkbox is ticked, as the page shows them."""
    found = re.findall(r'<input type="checkbox" name="lists" value="\d+"( checked)?[^>]*>\s*([^<\n]+)', page)
    return {name.strip(): bool(tick) for tick, name in found}


def open_page(token: str) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=UA)
    response = client.get(f"/e/p/{token}")
    assert response.status_code == 200
    return client, response.content.decode()


def csrf(client: Client) -> str:
    return client.cookies["csrftoken"].value


@pytest.mark.django_db
def test_page_offers_public_lists_and_the_persons_own(anna: Contact, lists: dict[str, MailingList]) -> None:
    subscribe(anna, lists["news"])
    subscribe(anna, lists["vip"])
    _client, page = open_page(message_token(message_of(anna).pk))
    # Public ones and the private list she is on; not other private lists, not globex's.
    assert checked(page) == {"Deals": False, "Letters": False, "News": True, "VIP club": True}
    assert "a•••@example.com" in page and "anna@example.com" not in page and "csrfmiddlewaretoken" in page


@pytest.mark.django_db
def test_round_trip_changes_lists_with_consent_records(
    anna: Contact, lists: dict[str, MailingList], run_tasks_now: None, django_capture_on_commit_callbacks: Any
) -> None:
    subscribe(anna, lists["news"])
    subscribe(anna, lists["vip"])
    message = message_of(anna)
    token = message_token(message.pk)
    client, _page = open_page(token)
    before = ConsentRecord.objects.count()
    form = {
        "csrfmiddlewaretoken": csrf(client),
        # News unticked; Deals and Letters ticked; VIP kept; Staff (private, not hers) smuggled in.
        "lists": [lists["deals"].pk, lists["vip"].pk, lists["letters"].pk, lists["staff"].pk, lists["globex"].pk],
        "action": "save",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/e/p/{token}", form)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Your choices are saved." in page
    assert statuses(anna) == {
        "News": "unsubscribed",
        "VIP club": "subscribed",
        "Deals": "subscribed",
        "Letters": "pending",
    }
    assert checked(page) == {"Deals": True, "Letters": True, "News": False, "VIP club": True}
    records = ConsentRecord.objects.order_by("id")[before:]
    assert sorted((r.mailing_list.name, r.action, r.source, r.ip_address, r.user_agent) for r in records) == [
        ("Deals", "subscribed", "form", "127.0.0.1", UA),
        ("Letters", "subscribed", "form", "127.0.0.1", UA),
        ("News", "unsubscribed", "form", "127.0.0.1", UA),
    ]
    assert {r.text_shown for r in records} == {
        "Choose the emails you want from Acme: Deals",
        "Choose the emails you want from Acme: Letters",
        "Choose the emails you want from Acme: News",
    }
    # Double opt-in list: a confirmation mail went out.
    assert OutboxMessage.objects.filter(to=["anna@example.com"]).count() == 1
    event = MessageEvent.objects.get(message=message)
    assert (event.type, event.details) == ("unsubscribed", {"scope": "lists", "lists": [lists["news"].pk]})


@pytest.mark.django_db
def test_post_without_the_csrf_token_is_refused(anna: Contact, lists: dict[str, MailingList]) -> None:
    subscribe(anna, lists["news"])
    token = message_token(message_of(anna).pk)
    response = Client(enforce_csrf_checks=True).post(f"/e/p/{token}", {"action": "unsubscribe_all"})
    assert response.status_code == 403
    assert statuses(anna) == {"News": "subscribed"} and not Suppression.objects.exists()


@pytest.mark.django_db
def test_unsubscribe_from_all_then_opt_back_in(acme: Workspace, anna: Contact, lists: dict[str, MailingList]) -> None:
    subscribe(anna, lists["news"])
    subscribe(anna, lists["vip"])
    token = message_token(message_of(anna).pk)
    client, _page = open_page(token)
    page = client.post(f"/e/p/{token}", {"csrfmiddlewaretoken": csrf(client), "action": "unsubscribe_all"})
    assert statuses(anna) == {"News": "unsubscribed", "VIP club": "unsubscribed"}
    assert Suppression.objects.get().reason == "unsubscribed"
    assert ConsentRecord.objects.get(mailing_list=None).text_shown == (
        "Choose the emails you want from Acme: Unsubscribe from all"
    )
    assert "You are unsubscribed from all marketing emails." in page.content.decode()
    # Her own "unsubscribe from all" may be undone by her: ticking a list lifts it.
    client.post(f"/e/p/{token}", {"csrfmiddlewaretoken": csrf(client), "lists": [lists["deals"].pk], "action": "save"})
    assert not Suppression.objects.exists()
    assert statuses(anna)["Deals"] == "subscribed" and statuses(anna)["News"] == "unsubscribed"


@pytest.mark.django_db
def test_a_bounced_address_cannot_join_a_list(acme: Workspace, anna: Contact, lists: dict[str, MailingList]) -> None:
    suppression_add(workspace=acme, email=anna.email, reason="hard_bounce")
    token = message_token(message_of(anna).pk)
    client, page = open_page(token)
    assert "can no longer receive our emails" in page
    response = client.post(
        f"/e/p/{token}", {"csrfmiddlewaretoken": csrf(client), "lists": [lists["news"].pk], "action": "save"}
    )
    assert "can no longer receive our emails, so no list can be chosen." in response.content.decode()
    assert statuses(anna) == {} and Suppression.objects.get().reason == "hard_bounce"


@pytest.mark.django_db
def test_erased_contact_gets_no_longer_available(acme: Workspace) -> None:
    message = Message.objects.create(workspace=acme, contact=None, source="step:1", to_email="", state="sent")
    response = Client().get(f"/e/p/{message_token(message.pk)}")
    assert response.status_code == 410 and b"No longer available" in response.content
