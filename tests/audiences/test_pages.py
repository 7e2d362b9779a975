"""The audience pages as a marketer uses them, and the public subscribe / confirm pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from audiences.models import (
    BulkJob,
    ConsentRecord,
    Contact,
    CustomField,
    FieldType,
    MailingList,
    Subscription,
    Suppression,
)
from audiences.services import contact_save, list_save, suppression_add
from esp.models import OutboxMessage, Role, Workspace
from tests.conftest import logged_in
from tests.factories import member


@pytest.fixture
def marketer(acme: Workspace) -> Client:
    return logged_in(member(acme, Role.MARKETER))


@pytest.mark.django_db
def test_contacts_page_filters_and_pages_by_keyset(
    acme: Workspace, marketer: Client, django_capture_on_commit_callbacks: Any, run_tasks_now: None
) -> None:
    news = list_save(workspace=acme, data={"name": "News", "double_opt_in": False})
    for n in range(55):
        contact_save(workspace=acme, data={"email": f"c{n:02d}@example.com", "tags": ["vip"] if n % 2 else []})
    page = marketer.get("/audience/contacts/").content.decode()
    assert page.count('name="ids"') == 50 and "before=" in page
    next_url = re.search(r'href="\?(before=\d+)"', page).group(1)
    assert marketer.get(f"/audience/contacts/?{next_url}").content.decode().count('name="ids"') == 5
    assert marketer.get("/audience/contacts/?tag=vip").content.decode().count('name="ids"') == 27
    assert "c07@example.com" in marketer.get("/audience/contacts/?q=c07").content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # the job runs once the request committed
        response = marketer.post(
            "/audience/contacts/", {"action": "subscribe", "list_value": news.pk, "target": "all", "tag": "vip"}
        )
    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/audience/contacts/bulk/{job.pk}/"
    assert Subscription.objects.filter(mailing_list=news, status="subscribed").count() == 27
    listed = marketer.get(f"/audience/contacts/?list={news.pk}&status=subscribed").content.decode()
    assert listed.count('name="ids"') == 27


@pytest.mark.django_db
def test_bulk_actions_on_ticked_contacts(acme: Workspace, marketer: Client) -> None:
    a, _ = contact_save(workspace=acme, data={"email": "a@example.com"})
    b, _ = contact_save(workspace=acme, data={"email": "b@example.com"})
    marketer.post("/audience/contacts/", {"action": "tag", "value": "winter", "target": "selected", "ids": [a.pk]})
    assert Contact.objects.get(pk=a.pk).tags == ["winter"] and Contact.objects.get(pk=b.pk).tags == []
    asked = marketer.post("/audience/contacts/", {"action": "delete", "target": "selected", "ids": [b.pk]})
    assert asked.status_code == 200 and "Delete 1 contact?" in asked.content.decode()
    assert Contact.objects.count() == 2  # nothing goes before the confirmation
    done = marketer.post(
        "/audience/contacts/",
        {"action": "delete", "target": "selected", "ids": [b.pk], "confirmed": "yes"},
        follow=True,
    )
    assert "1 contact deleted." in done.content.decode()
    assert list(Contact.objects.values_list("email", flat=True)) == ["a@example.com"]


@pytest.mark.django_db
def test_bulk_delete_all_matching_is_scoped_to_the_workspace(
    acme: Workspace, globex: Workspace, marketer: Client, django_capture_on_commit_callbacks: Any, run_tasks_now: None
) -> None:
    contact_save(workspace=acme, data={"email": "x@example.com"})
    contact_save(workspace=globex, data={"email": "x@example.com"})
    with django_capture_on_commit_callbacks(execute=True):
        marketer.post("/audience/contacts/", {"action": "delete", "target": "all", "confirmed": "yes"})
    assert Contact.objects.filter(workspace=globex).count() == 1 and Contact.objects.filter(workspace=acme).count() == 0


@pytest.mark.django_db
def test_profile_edit_with_typed_custom_fields(acme: Workspace, marketer: Client) -> None:
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    contact, _ = contact_save(workspace=acme, data={"email": "ivan@example.bg"})
    bad = marketer.post(f"/audience/contacts/{contact.pk}/", {"email": "ivan@example.bg", "attr__orders": "many"})
    assert bad.status_code == 400 and "Expected a whole number" in bad.content.decode()
    good = marketer.post(
        f"/audience/contacts/{contact.pk}/",
        {"email": "ivan@example.bg", "first_name": "Иван", "attr__orders": "4", "tags": "vip, winter", "country": "bg"},
    )
    assert good.status_code == 302
    contact.refresh_from_db()
    assert (contact.first_name, contact.attributes, contact.tags, contact.country) == (
        "Иван",
        {"orders": 4},
        ["vip", "winter"],
        "BG",
    )


@pytest.mark.django_db
def test_profile_subscribe_honours_double_opt_in_and_records_consent(acme: Workspace, marketer: Client) -> None:
    doi = list_save(workspace=acme, data={"name": "Weekly", "double_opt_in": True})
    contact, _ = contact_save(workspace=acme, data={"email": "maria@example.com"})
    marketer.post(f"/audience/contacts/{contact.pk}/subscriptions/", {"list": doi.pk})
    assert Subscription.objects.get().status == "pending"
    page = marketer.get(f"/audience/contacts/{contact.pk}/").content.decode()
    assert "Awaiting confirmation" in page and "Admin" in page


@pytest.mark.django_db
def test_profile_subscribe_to_a_list_that_is_not_one_is_a_404(
    acme: Workspace, globex: Workspace, marketer: Client
) -> None:
    contact, _ = contact_save(workspace=acme, data={"email": "maria@example.com"})
    theirs = list_save(workspace=globex, data={"name": "Globex news"})
    for value in ("", "abc", "1e3", str(theirs.pk)):
        response = marketer.post(f"/audience/contacts/{contact.pk}/subscriptions/", {"list": value})
        assert response.status_code == 404, value
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_public_double_opt_in_round_trip(
    acme: Workspace, run_tasks_now: None, django_capture_on_commit_callbacks
) -> None:
    weekly = list_save(workspace=acme, data={"name": "Weekly deals", "is_public": True, "double_opt_in": True})
    visitor = Client()
    assert "Weekly deals" in visitor.get(f"/subscribe/acme/{weekly.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = visitor.post(
            f"/subscribe/acme/{weekly.pk}/", {"email": "New@Example.com", "consent": "on"}, REMOTE_ADDR="203.0.113.9"
        )
    assert "Check your inbox" in response.content.decode()
    assert Subscription.objects.get().status == "pending"
    mail = OutboxMessage.objects.get(workspace=acme)
    link = re.search(r"https?://\S+", mail.text_body).group(0)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    assert (
        visitor.get(path).status_code == 200 and Subscription.objects.get().status == "pending"
    )  # GET changes nothing
    assert "Subscription confirmed" in visitor.post(path).content.decode()
    assert Subscription.objects.get().status == "subscribed"
    actions = list(ConsentRecord.objects.order_by("id").values_list("action", "source", "ip_address"))
    assert actions[0] == ("subscribed", "form", "203.0.113.9") and actions[1][0] == "confirmed"
    assert "I agree" in ConsentRecord.objects.order_by("id").first().text_shown


@pytest.mark.django_db
def test_public_page_needs_consent_and_hides_private_lists(acme: Workspace) -> None:
    private = list_save(workspace=acme, data={"name": "Staff", "is_public": False})
    public = list_save(workspace=acme, data={"name": "News", "is_public": True})
    assert Client().get(f"/subscribe/acme/{private.pk}/").status_code == 404
    assert Client().get(f"/subscribe/globex/{public.pk}/").status_code == 404
    assert Client().post(f"/subscribe/acme/{public.pk}/", {"email": "a@example.com"}).status_code == 400
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_suppressed_address_cannot_subscribe_and_is_not_told(acme: Workspace) -> None:
    public = list_save(workspace=acme, data={"name": "News", "is_public": True, "double_opt_in": False})
    suppression_add(workspace=acme, email="blocked@example.com", reason="complaint")
    response = Client().post(f"/subscribe/acme/{public.pk}/", {"email": "blocked@example.com", "consent": "on"})
    assert response.status_code == 200 and not Subscription.objects.exists()


@pytest.mark.django_db
def test_only_owners_lift_suppressions(acme: Workspace, marketer: Client, acme_client: Client) -> None:
    suppression = suppression_add(workspace=acme, email="x@example.com", reason="hard_bounce")
    assert marketer.post(f"/audience/suppressions/{suppression.pk}/lift/").status_code == 403
    assert acme_client.post(f"/audience/suppressions/{suppression.pk}/lift/").status_code == 302
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_lists_and_fields_pages(acme: Workspace, marketer: Client) -> None:
    assert marketer.post("/audience/lists/", {"name": "VIP", "double_opt_in": "on"}).status_code == 302
    assert marketer.post("/audience/lists/", {"name": "vip"}).status_code == 400  # names are unique
    assert "VIP" in marketer.get("/audience/lists/").content.decode()
    assert marketer.post("/audience/fields/", {"key": "band", "label": "Band", "type": "choice"}).status_code == 400
    assert (
        marketer.post(
            "/audience/fields/", {"key": "band", "label": "Band", "type": "choice", "choices": "a, b"}
        ).status_code
        == 302
    )
    assert CustomField.objects.get().choices == ["a", "b"]
    assert MailingList.objects.get().double_opt_in
