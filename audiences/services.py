"""Writes for the audience: contacts, lists, subscriptions with consent, suppressions.
Every function takes the workspace it acts in; other workspaces' rows are never found."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.contacts import REJECTED, ContactInput, contacts_upsert, custom_fields_of, parse_contact
from audiences.models import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    Contact,
    MailingList,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    email_hash,
)
from esp.models import Workspace

# --- contacts -------------------------------------------------------------------------------


def contact_save(
    *, workspace: Workspace, data: dict[str, Any], source: str = ConsentSource.API, update_existing: bool = True
) -> tuple[Contact, bool]:
    """Create or update one contact from a flat mapping (API item, form). Returns the contact
    and whether it was created; raises ValidationError naming each bad field."""
    item = parse_contact(data, custom_fields_of(workspace))
    (outcome,) = contacts_upsert(workspace=workspace, rows=[item], update_existing=update_existing, source=source)
    if outcome.status == REJECTED:
        raise ValidationError({"email": outcome.error})
    return Contact.objects.in_workspace(workspace).get(pk=outcome.contact_id), outcome.status == "created"


@transaction.atomic
def contact_update(*, workspace: Workspace, contact_id: int, data: dict[str, Any]) -> Contact:
    """Change a contact's fields (email included); only the given fields change."""
    contact = get_object_or_404(Contact.objects.in_workspace(workspace).select_for_update(), pk=contact_id)
    merged = {"email": contact.email, **data}
    item = parse_contact(merged, custom_fields_of(workspace))
    if item.email.lower() != contact.email.lower():
        clash = Contact.objects.in_workspace(workspace).filter(email__lower=item.email.lower()).exists()
        if clash:
            raise ValidationError({"email": _("Another contact has this address.")})
    if item.external_id and item.external_id != contact.external_id:
        clash = Contact.objects.in_workspace(workspace).filter(external_id=item.external_id).exclude(pk=contact.pk)
        if clash.exists():
            raise ValidationError({"external_id": _("Another contact has this external_id.")})
    contact.email = item.email
    if "external_id" in data:
        contact.external_id = item.external_id
    for name, value in item.values.items():
        setattr(contact, name, value if value is not None else (None if name == "birth_date" else ""))
    contact.attributes = {**contact.attributes, **item.attributes}
    if "tags" in data:
        contact.tags = item.tags
    contact.updated_at = timezone.now()
    contact.save()
    return contact


@transaction.atomic
def contact_delete(*, workspace: Workspace, contact_id: int) -> None:
    get_object_or_404(Contact.objects.in_workspace(workspace), pk=contact_id).delete()


def contacts_tag(*, workspace: Workspace, contact_ids: list[int], tag: str, remove: bool = False) -> int:
    """Add (or remove) a tag on many contacts in one statement."""
    from django.db.models import Func, Value
    from django.db.models.functions import Now

    contacts = Contact.objects.in_workspace(workspace).filter(pk__in=contact_ids)
    if remove:
        return contacts.filter(tags__contains=[tag]).update(
            tags=Func("tags", Value(tag), function="array_remove"), updated_at=Now()
        )
    return contacts.exclude(tags__contains=[tag]).update(
        tags=Func("tags", Value(tag), function="array_append"), updated_at=Now()
    )


# --- lists ----------------------------------------------------------------------------------


@transaction.atomic
def list_save(*, workspace: Workspace, data: dict[str, Any], list_id: int | None = None) -> MailingList:
    name = str(data.get("name", "")).strip()
    if not name:
        raise ValidationError({"name": _("A list needs a name.")})
    lists = MailingList.objects.in_workspace(workspace)
    mailing_list = get_object_or_404(lists, pk=list_id) if list_id else MailingList(workspace=workspace)
    if lists.filter(name__iexact=name).exclude(pk=mailing_list.pk).exists():
        raise ValidationError({"name": _("A list with this name exists already.")})
    mailing_list.name = name
    for attribute in ("description", "is_public", "double_opt_in"):
        if attribute in data:
            setattr(mailing_list, attribute, data[attribute])
    mailing_list.save()
    return mailing_list


@transaction.atomic
def list_delete(*, workspace: Workspace, list_id: int) -> None:
    get_object_or_404(MailingList.objects.in_workspace(workspace), pk=list_id).delete()


# --- subscriptions and consent --------------------------------------------------------------


@dataclass(frozen=True)
class ConsentContext:
    """How consent was given: recorded with every change, as GDPR Art. 7 asks."""

    source: str
    ip_address: str | None = None
    user_agent: str = ""
    text_shown: str = ""


def _record(contact: Contact, mailing_list: MailingList | None, action: str, context: ConsentContext) -> None:
    ConsentRecord.objects.create(
        workspace_id=contact.workspace_id,
        contact=contact,
        mailing_list=mailing_list,
        action=action,
        source=context.source,
        ip_address=context.ip_address,
        user_agent=context.user_agent[:400],
        text_shown=context.text_shown,
    )


def is_suppressed(*, workspace: Workspace, email: str) -> bool:
    return Suppression.objects.in_workspace(workspace).filter(email_hash=email_hash(email)).exists()


@transaction.atomic
def subscription_subscribe(
    *, workspace: Workspace, contact: Contact, mailing_list: MailingList, context: ConsentContext
) -> Subscription:
    """Subscribe, honouring double opt-in: such a list gets `pending` and a confirmation mail;
    others `subscribed` at once. A suppressed address cannot be subscribed."""
    from audiences.tasks import send_confirmation_email

    if contact.workspace_id != workspace.pk or mailing_list.workspace_id != workspace.pk:
        raise ValidationError(_("Contact and list must belong to this workspace."))
    if is_suppressed(workspace=workspace, email=contact.email):
        raise ValidationError({"email": _("This address is on the suppression list and cannot be subscribed.")})
    now = timezone.now()
    subscription, _created = Subscription.objects.select_for_update().get_or_create(
        workspace=workspace,
        contact=contact,
        mailing_list=mailing_list,
        defaults={"status": SubscriptionStatus.PENDING},
    )
    if subscription.status == SubscriptionStatus.SUBSCRIBED and not _created:
        return subscription
    subscription.status = SubscriptionStatus.PENDING if mailing_list.double_opt_in else SubscriptionStatus.SUBSCRIBED
    subscription.confirmed_at = None if mailing_list.double_opt_in else now
    subscription.unsubscribed_at = None
    subscription.updated_at = now
    subscription.save()
    _record(contact, mailing_list, ConsentAction.SUBSCRIBED, context)
    if mailing_list.double_opt_in:
        send_confirmation_email.delay_on_commit(subscription.pk)  # type: ignore[attr-defined]
    return subscription


@transaction.atomic
def subscription_confirm(*, subscription: Subscription, context: ConsentContext) -> Subscription:
    subscription = (
        Subscription.objects.select_for_update().select_related("contact", "mailing_list").get(pk=subscription.pk)
    )
    if subscription.status == SubscriptionStatus.PENDING:
        subscription.status = SubscriptionStatus.SUBSCRIBED
        subscription.confirmed_at = subscription.updated_at = timezone.now()
        subscription.save()
        _record(subscription.contact, subscription.mailing_list, ConsentAction.CONFIRMED, context)
    return subscription


@transaction.atomic
def subscription_unsubscribe(
    *, workspace: Workspace, contact: Contact, mailing_list: MailingList, context: ConsentContext
) -> Subscription | None:
    subscription = (
        Subscription.objects.in_workspace(workspace)
        .select_for_update()
        .filter(contact=contact, mailing_list=mailing_list)
        .first()
    )
    if subscription is None or subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        return subscription
    subscription.status = SubscriptionStatus.UNSUBSCRIBED
    subscription.unsubscribed_at = subscription.updated_at = timezone.now()
    subscription.save()
    _record(contact, mailing_list, ConsentAction.UNSUBSCRIBED, context)
    return subscription


# --- suppressions ---------------------------------------------------------------------------


@transaction.atomic
def suppression_add(*, workspace: Workspace, email: str, reason: str, note: str = "") -> Suppression:
    if reason not in SuppressionReason.values:
        raise ValidationError({"reason": _("Unknown reason.")})
    suppression, _created = Suppression.objects.get_or_create(
        workspace=workspace,
        email_hash=email_hash(email),
        defaults={"email": email.strip(), "reason": reason, "note": note[:400]},
    )
    return suppression


@transaction.atomic
def suppression_lift(*, workspace: Workspace, suppression_id: int) -> None:
    """Only an owner may lift a suppression (the views and API check the role)."""
    get_object_or_404(Suppression.objects.in_workspace(workspace), pk=suppression_id).delete()


def contact_input(data: dict[str, Any], workspace: Workspace) -> ContactInput:
    return parse_contact(data, custom_fields_of(workspace))
