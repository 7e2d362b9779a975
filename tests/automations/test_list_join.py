"""A list join starts list-triggered series from every write path that makes a subscription
`subscribed`: the subscribe service, a confirmation, an import, the API's bulk upsert with a
list, and a member's bulk "add to list" — each set-based, the hook delivered in batches."""

from __future__ import annotations

from typing import Any

import pytest

from audiences import hooks
from audiences.bulk import contacts_bulk_apply
from audiences.contacts import ContactInput, contacts_upsert
from audiences.models import BulkAction, MailingList, Subscription
from audiences.services import ConsentContext, contacts_bulk_save, subscription_confirm
from automations.models import Enrollment
from campaigns.models import EmailTemplate
from esp.models import Workspace
from tests.automations.series_helpers import contact, live_series

pytestmark = pytest.mark.usefixtures("clock", "run_tasks_now")


def _series(acme: Workspace, templates: dict[str, EmailTemplate], mailing_list: MailingList) -> None:
    live_series(
        acme,
        [{"key": "hello", "type": "send", "template": templates["welcome"].pk}],
        trigger={"type": "list", "list": mailing_list.pk},
    )


def _entered(mailing_list: MailingList) -> set[str]:
    return set(
        Enrollment.objects.filter(series__trigger__list=mailing_list.pk).values_list("contact__email", flat=True)
    )


def test_an_import_enrolls_its_new_subscribers_in_batches(
    acme: Workspace, templates: dict[str, EmailTemplate], django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(hooks, "BATCH_SIZE", 2)
    news = MailingList.objects.create(workspace=acme, name="News", double_opt_in=False)
    _series(acme, templates, news)
    heard: list[hooks.ContactsSubscribed] = []
    hooks.contacts_subscribed.subscribe(heard.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            contacts_upsert(
                workspace=acme,
                rows=[ContactInput(f"p{i}@example.com") for i in range(5)],
                source="import",
                mailing_list=news,
                consent_source="import",
            )
    finally:
        hooks.contacts_subscribed.unsubscribe(heard.append)
    assert [len(batch.contact_ids) for batch in heard] == [2, 2, 1]
    assert _entered(news) == {f"p{i}@example.com" for i in range(5)}


def test_the_api_bulk_upsert_with_a_list_enrolls_and_a_double_opt_in_waits_for_the_confirmation(
    acme: Workspace, templates: dict[str, EmailTemplate], django_capture_on_commit_callbacks: Any
) -> None:
    news = MailingList.objects.create(workspace=acme, name="News", double_opt_in=False)
    asked = MailingList.objects.create(workspace=acme, name="Asked", double_opt_in=True)
    _series(acme, templates, news)
    _series(acme, templates, asked)
    with django_capture_on_commit_callbacks(execute=True):
        contacts_bulk_save(workspace=acme, items=[{"email": "ann@example.com"}], mailing_list=news)
        contacts_bulk_save(workspace=acme, items=[{"email": "bob@example.com"}], mailing_list=asked)
    assert _entered(news) == {"ann@example.com"}
    assert _entered(asked) == set()
    pending = Subscription.objects.get(mailing_list=asked, contact__email="bob@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        subscription_confirm(subscription=pending, context=ConsentContext("form"))
    assert _entered(asked) == {"bob@example.com"}


def test_a_members_bulk_add_to_list_enrolls(
    acme: Workspace, globex: Workspace, templates: dict[str, EmailTemplate], django_capture_on_commit_callbacks: Any
) -> None:
    news = MailingList.objects.create(workspace=acme, name="News", double_opt_in=False)
    _series(acme, templates, news)
    people = [contact(acme, f"m{i}@example.com") for i in range(3)]
    stranger = contact(globex, "s@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        added = contacts_bulk_apply(
            workspace=acme,
            contact_ids=[p.pk for p in people] + [stranger.pk],
            action=BulkAction.SUBSCRIBE,
            value=str(news.pk),
        )
    assert added == 3
    assert _entered(news) == {p.email for p in people}
    with django_capture_on_commit_callbacks(execute=True):
        again = contacts_bulk_apply(
            workspace=acme, contact_ids=[p.pk for p in people], action=BulkAction.SUBSCRIBE, value=str(news.pk)
        )
    assert again == 0
    assert Enrollment.objects.filter(series__trigger__list=news.pk).count() == 3
