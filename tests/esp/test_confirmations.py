"""Destructive actions ask first: a GET of the action's URL shows what will go and changes
nothing; only the POST of that page acts, and its message says what was deleted."""

from __future__ import annotations

import pytest

from audiences.models import Contact, CustomField, Event
from audiences.services import contact_save
from esp.models import ApiKey, Membership, Role, User, Workspace
from tests.conftest import logged_in
from tests.factories import EventFactory, api_key, member

pytestmark = pytest.mark.django_db


def test_contact_delete_asks_with_counts_then_deletes(acme: Workspace, acme_owner: User) -> None:
    ana = contact_save(workspace=acme, data={"email": "ana@example.com"})[0]
    EventFactory.create_batch(2, workspace=acme, contact=ana)
    client = logged_in(acme_owner)

    page = client.get(f"/audience/contacts/{ana.pk}/delete/")
    assert page.status_code == 200
    assert "2 events (orders, product views, visits) are deleted." in page.content.decode()
    assert Contact.objects.filter(pk=ana.pk).exists()

    done = client.post(f"/audience/contacts/{ana.pk}/delete/", follow=True)
    assert "Contact ana@example.com deleted, with 2 events." in done.content.decode()
    assert not Event.objects.filter(workspace=acme).exists()


def test_viewer_cannot_even_open_a_confirmation(acme: Workspace) -> None:
    ana = contact_save(workspace=acme, data={"email": "ana@example.com"})[0]
    field = CustomField.objects.create(workspace=acme, key="size", label="Size")
    viewer = logged_in(member(acme, Role.VIEWER, email="viewer@acme.test"))
    assert viewer.get(f"/audience/contacts/{ana.pk}/delete/").status_code == 403
    assert viewer.get(f"/audience/fields/{field.pk}/delete/").status_code == 403
    marketer = logged_in(member(acme, Role.MARKETER, email="marketer@acme.test"))
    other = Membership.objects.get(user__email="viewer@acme.test")
    assert marketer.get(f"/settings/members/{other.pk}/remove/").status_code == 403


def test_custom_field_removal_keeps_values_unless_asked(acme: Workspace, acme_owner: User) -> None:
    field = CustomField.objects.create(workspace=acme, key="size", label="Size", type="number")
    contact_save(workspace=acme, data={"email": "ben@example.com", "attributes": {"size": 44}})
    client = logged_in(acme_owner)

    page = client.get(f"/audience/fields/{field.pk}/delete/").content.decode()
    assert "1 contact has a value in it." in page
    assert CustomField.objects.filter(pk=field.pk).exists()

    done = client.post(f"/audience/fields/{field.pk}/delete/", follow=True).content.decode()
    assert "Field size removed. Values stored on contacts are kept." in done
    assert Contact.objects.get(email="ben@example.com").attributes == {"size": 44}


def test_api_key_and_member_confirmations_change_nothing(acme: Workspace, acme_owner: User) -> None:
    api_key(acme, name="Shop backend")
    key = ApiKey.objects.get(workspace=acme)
    mia = member(acme, Role.MARKETER, email="mia@acme.test").memberships.get()
    client = logged_in(acme_owner)

    assert "Revoke the API key “Shop backend”" in client.get(f"/settings/api-keys/{key.pk}/revoke/").content.decode()
    assert "Remove mia@acme.test from Acme?" in client.get(f"/settings/members/{mia.pk}/remove/").content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert Membership.objects.filter(pk=mia.pk).exists()

    done = client.post(f"/settings/members/{mia.pk}/remove/", follow=True).content.decode()
    assert "mia@acme.test was removed from the workspace." in done
