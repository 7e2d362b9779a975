"""The bulk upsert every contact write goes through (API items, CSV import batches)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audiences.contacts import CREATED, REJECTED, UNCHANGED, UPDATED, contacts_upsert, parse_contact
from audiences.models import (
    ConsentRecord,
    Contact,
    CustomField,
    FieldType,
    MailingList,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
)
from audiences.services import contact_save, suppression_add
from esp.models import Workspace


def _rows(*items: dict) -> list:
    return [parse_contact(item, {}) for item in items]


@pytest.mark.django_db
def test_email_is_normalised_and_unique_case_insensitively(acme: Workspace) -> None:
    contact, created = contact_save(workspace=acme, data={"email": "  Foo@Example.COM "})
    assert created and contact.email == "Foo@example.com"
    again, created = contact_save(workspace=acme, data={"email": "foo@example.com", "first_name": "Foo"})
    assert not created and again.pk == contact.pk and again.first_name == "Foo"
    assert Contact.objects.in_workspace(acme).count() == 1


@pytest.mark.django_db
def test_same_address_in_two_workspaces_is_two_contacts(acme: Workspace, globex: Workspace) -> None:
    a, _ = contact_save(workspace=acme, data={"email": "x@example.com"})
    b, _ = contact_save(workspace=globex, data={"email": "x@example.com"})
    assert a.pk != b.pk


@pytest.mark.django_db
def test_bulk_outcomes_in_order(acme: Workspace) -> None:
    contact_save(workspace=acme, data={"email": "old@example.com", "first_name": "Old", "city": "Sofia"})
    contact_save(workspace=acme, data={"email": "owner@example.com", "external_id": "u-1"})
    suppression_add(workspace=acme, email="blocked@example.com", reason=SuppressionReason.COMPLAINT)
    outcomes = contacts_upsert(
        workspace=acme,
        rows=_rows(
            {"email": "new@example.com"},
            {"email": "OLD@example.com", "last_name": "Timer"},
            {"email": "Blocked@Example.com"},
            {"email": "dup@example.com", "first_name": "first"},
            {"email": "dup@example.com", "first_name": "second"},
            {"email": "thief@example.com", "external_id": "u-1"},
        ),
    )
    assert [o.status for o in outcomes] == [CREATED, UPDATED, REJECTED, REJECTED, CREATED, REJECTED]
    assert (
        "suppression" in outcomes[2].error and "again later" in outcomes[3].error and "external_id" in outcomes[5].error
    )
    # Each rejection names its field, whatever language its message is in.
    assert [outcomes[i].field for i in (2, 3, 5)] == ["email", "email", "external_id"]
    old = Contact.objects.get(email="old@example.com")
    assert (old.first_name, old.last_name, old.city) == ("Old", "Timer", "Sofia")  # untouched fields kept
    assert Contact.objects.get(email="dup@example.com").first_name == "second"


@pytest.mark.django_db
def test_an_existing_address_with_another_contacts_external_id_is_rejected(acme: Workspace) -> None:
    contact_save(workspace=acme, data={"email": "owner@example.com", "external_id": "u-1"})
    contact_save(workspace=acme, data={"email": "other@example.com", "external_id": "u-2", "city": "Sofia"})
    outcomes = contacts_upsert(
        workspace=acme,
        rows=_rows(
            {"email": "Other@Example.com", "external_id": "u-1", "city": "Varna"},  # u-1 is owner's
            {"email": "owner@example.com", "external_id": "u-1", "city": "Ruse"},  # its own: an update
            {"email": "new@example.com", "external_id": "u-2"},  # u-2 is other's
        ),
    )
    assert [o.status for o in outcomes] == [REJECTED, UPDATED, REJECTED]
    assert "external_id" in outcomes[0].error and "external_id" in outcomes[2].error
    assert outcomes[0].field == outcomes[2].field == "external_id"
    other = Contact.objects.get(workspace=acme, email="other@example.com")
    assert (other.external_id, other.city) == ("u-2", "Sofia")  # untouched
    assert Contact.objects.get(workspace=acme, email="owner@example.com").city == "Ruse"
    assert not Contact.objects.filter(workspace=acme, email="new@example.com").exists()


@pytest.mark.django_db
def test_outcomes_carry_the_ids_of_new_and_existing_contacts(acme: Workspace, globex: Workspace) -> None:
    known, _ = contact_save(workspace=acme, data={"email": "known@example.com"})
    contact_save(workspace=globex, data={"email": "new@example.com"})  # another workspace's
    outcomes = contacts_upsert(
        workspace=acme, rows=_rows({"email": "new@example.com"}, {"email": "KNOWN@example.com"}, {"email": "b@x.org"})
    )
    ids = dict(Contact.objects.in_workspace(acme).values_list("email", "id"))
    assert [(o.status, o.contact_id) for o in outcomes] == [
        (CREATED, ids["new@example.com"]),
        (UPDATED, known.pk),
        (CREATED, ids["b@x.org"]),
    ]


@pytest.mark.django_db
def test_skip_existing_leaves_them_alone(acme: Workspace) -> None:
    contact_save(workspace=acme, data={"email": "old@example.com", "first_name": "Old"})
    outcomes = contacts_upsert(
        workspace=acme, rows=_rows({"email": "old@example.com", "first_name": "New"}), update_existing=False
    )
    assert outcomes[0].status == UNCHANGED and outcomes[0].contact_id
    assert Contact.objects.get().first_name == "Old"


@pytest.mark.django_db
def test_list_subscription_never_undoes_an_unsubscribe(acme: Workspace) -> None:
    newsletter = MailingList.objects.create(workspace=acme, name="News")
    gone, _ = contact_save(workspace=acme, data={"email": "gone@example.com"})
    Subscription.objects.create(
        workspace=acme, contact=gone, mailing_list=newsletter, status=SubscriptionStatus.UNSUBSCRIBED
    )
    contacts_upsert(
        workspace=acme,
        rows=_rows({"email": "gone@example.com"}, {"email": "fresh@example.com"}),
        mailing_list=newsletter,
        consent_source="import",
        consent_text="Imported from shop export",
    )
    statuses = dict(Subscription.objects.values_list("contact__email", "status"))
    assert statuses == {"gone@example.com": "unsubscribed", "fresh@example.com": "subscribed"}
    assert ConsentRecord.objects.get().contact.email == "fresh@example.com"
    # Existing contacts not on the list yet are subscribed together with new ones.
    contact_save(workspace=acme, data={"email": "known@example.com"})
    contacts_upsert(
        workspace=acme,
        rows=_rows({"email": "known@example.com"}, {"email": "newer@example.com"}, {"email": "fresh@example.com"}),
        mailing_list=newsletter,
        consent_source="import",
        consent_text="Again",
    )
    statuses = dict(Subscription.objects.values_list("contact__email", "status"))
    assert statuses == {
        "gone@example.com": "unsubscribed",
        "fresh@example.com": "subscribed",
        "known@example.com": "subscribed",
        "newer@example.com": "subscribed",
    }
    assert sorted(ConsentRecord.objects.values_list("contact__email", flat=True)) == [
        "fresh@example.com",
        "known@example.com",
        "newer@example.com",
    ]


@pytest.mark.django_db
def test_typed_custom_fields(acme: Workspace) -> None:
    CustomField.objects.create(
        workspace=acme, key="income_band", label="Income", type=FieldType.CHOICE, choices=["low", "high"]
    )
    CustomField.objects.create(workspace=acme, key="orders", label="Orders", type=FieldType.NUMBER)
    contact, _ = contact_save(
        workspace=acme, data={"email": "a@example.com", "attributes": {"income_band": "high", "orders": "3"}}
    )
    assert contact.attributes == {"income_band": "high", "orders": 3}
    with pytest.raises(ValidationError) as error:
        contact_save(workspace=acme, data={"email": "b@example.com", "attributes": {"orders": "three", "nope": 1}})
    assert set(error.value.message_dict) == {"attributes.orders", "attributes.nope"}


@pytest.mark.parametrize("email", ["plain", "a@b", "two@@example.com", "sp ace@example.com", ""])
def test_bad_addresses_are_refused(email: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_contact({"email": email}, {})
    assert "email" in error.value.message_dict


def test_cyrillic_names_and_idn_domains() -> None:
    item = parse_contact({"email": "иван@пример.бг", "first_name": "Иван", "birth_date": "01.02.1990"}, {})
    assert item.values["first_name"] == "Иван" and str(item.values["birth_date"]) == "1990-02-01"
