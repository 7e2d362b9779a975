"""Subscription bombing: strangers posting someone's address to a public double opt-in form
get one confirmation mail per address and list a day out of it, a limit per IP, and the same
answer whatever happened."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from audiences.models import ConsentRecord, Contact, Subscription
from audiences.services import contact_save, list_save, suppression_add
from esp import attempts
from esp.models import OutboxMessage, Workspace


def _post(list_id: int, email: str, ip: str, capture: Any) -> tuple[int, bytes]:
    with capture(execute=True):
        response = Client().post(f"/subscribe/acme/{list_id}/", {"email": email, "consent": "on"}, REMOTE_ADDR=ip)
    return response.status_code, response.content


@pytest.mark.django_db
def test_fifteen_posts_of_one_address_send_one_mail(
    acme: Workspace, run_tasks_now: None, django_capture_on_commit_callbacks: Any
) -> None:
    weekly = list_save(workspace=acme, data={"name": "Weekly", "is_public": True, "double_opt_in": True})
    answers = {
        _post(weekly.pk, "victim@example.com", f"192.0.2.{n}", django_capture_on_commit_callbacks) for n in range(15)
    }
    assert len(answers) == 1 and next(iter(answers))[0] == 200  # the same answer every time
    assert OutboxMessage.objects.filter(workspace=acme, to=["victim@example.com"]).count() == 1
    assert ConsentRecord.objects.filter(action="subscribed").count() == 1
    # A day later, asking again sends a fresh confirmation.
    Subscription.objects.update(updated_at=Subscription.objects.get().updated_at - timedelta(hours=25))
    _post(weekly.pk, "victim@example.com", "192.0.2.99", django_capture_on_commit_callbacks)
    assert OutboxMessage.objects.filter(workspace=acme).count() == 2


@pytest.mark.django_db
def test_one_ip_posting_many_addresses_is_limited_with_the_same_answer(
    acme: Workspace, run_tasks_now: None, django_capture_on_commit_callbacks: Any
) -> None:
    weekly = list_save(workspace=acme, data={"name": "Weekly", "is_public": True, "double_opt_in": True})
    limit = attempts.SUBSCRIBE_IP[0].count
    answers = {
        _post(weekly.pk, f"person{n}@example.com", "203.0.113.4", django_capture_on_commit_callbacks)
        for n in range(limit + 5)
    }
    assert len(answers) == 1
    assert OutboxMessage.objects.filter(workspace=acme).count() == limit
    assert Subscription.objects.count() == limit


@pytest.mark.django_db
def test_the_answer_does_not_tell_subscribed_suppressed_or_new_apart(
    acme: Workspace, run_tasks_now: None, django_capture_on_commit_callbacks: Any
) -> None:
    weekly = list_save(workspace=acme, data={"name": "Weekly", "is_public": True, "double_opt_in": True})
    suppression_add(workspace=acme, email="blocked@example.com", reason="complaint")
    _post(weekly.pk, "member@example.com", "192.0.2.1", django_capture_on_commit_callbacks)
    Subscription.objects.update(status="subscribed")
    answers = {
        _post(weekly.pk, email, f"192.0.2.{n + 10}", django_capture_on_commit_callbacks)
        for n, email in enumerate(["member@example.com", "blocked@example.com", "new@example.com"])
    }
    assert len(answers) == 1


@pytest.mark.django_db
def test_a_stranger_cannot_rename_a_known_contact(
    acme: Workspace, run_tasks_now: None, django_capture_on_commit_callbacks: Any
) -> None:
    """The name a contact's mail greets it with is not the public form's to change."""
    weekly = list_save(workspace=acme, data={"name": "Weekly", "is_public": True, "double_opt_in": True})
    contact_save(workspace=acme, data={"email": "anna@example.com", "first_name": "Anna"})
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(
            f"/subscribe/acme/{weekly.pk}/",
            {"email": "anna@example.com", "first_name": "Your account is locked, see evil.example", "consent": "on"},
        )
    assert Contact.objects.get(workspace=acme, email="anna@example.com").first_name == "Anna"
    assert Subscription.objects.get().status == "pending"  # the subscription itself still works
