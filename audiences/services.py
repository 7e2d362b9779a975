"""Writes for the audience: contacts, lists, subscriptions with consent, suppressions.
Every function takes the workspace it acts in; other workspaces' rows are never found."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from audiences import hooks
from audiences.contacts import (
    CREATED,
    REJECTED,
    UNCHANGED,
    UPDATED,
    ContactInput,
    contact_payload,
    contacts_upsert,
    custom_fields_of,
    parse_contact,
)
from audiences.models import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    Contact,
    CustomField,
    FieldType,
    MailingList,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    email_hash,
)
from audiences.segments.services import (
    segment_memberships_forget,
    segments_contacts_changed,
)
from esp.api.errors import error_fields
from esp.mail import account_mail_language, send_templated_mail
from esp.models import Workspace
from esp.net import client_ip
from esp.queue import enqueue_after_commit

# --- contacts -------------------------------------------------------------------------------


def contact_save(
    *, workspace: Workspace, data: dict[str, Any], source: str = ConsentSource.API, update_existing: bool = True
) -> tuple[Contact, bool]:
    """Create or update one contact from a flat mapping (API item, form). Returns the contact
    and whether it was created; raises ValidationError naming each bad field."""
    item = parse_contact(data, custom_fields_of(workspace))
    (outcome,) = contacts_upsert(workspace=workspace, rows=[item], update_existing=update_existing, source=source)
    if outcome.status == REJECTED:
        raise ValidationError({outcome.field: outcome.error})
    segments_contacts_changed(workspace_id=workspace.pk, contact_ids=[outcome.contact_id])
    return Contact.objects.in_workspace(workspace).get(pk=outcome.contact_id), outcome.status == "created"


@dataclass(frozen=True)
class BulkItem:
    index: int
    status: str  # created | updated | unchanged | rejected
    contact_id: int | None
    errors: dict[str, list[str]]


@dataclass(frozen=True)
class BulkSaved:
    items: list[BulkItem]

    @property
    def counts(self) -> dict[str, int]:
        return {
            name: sum(1 for item in self.items if item.status == name)
            for name in (CREATED, UPDATED, UNCHANGED, REJECTED)
        }


def contacts_bulk_save(
    *,
    workspace: Workspace,
    items: list[Any],
    update_existing: bool = True,
    mailing_list: MailingList | None = None,
    consent_text: str = "",
    ignored: Collection[str] = (),
) -> BulkSaved:
    """Create or update many contacts given as mappings (the API's bulk upsert): each is judged
    on its own, an invalid one is rejected with its field errors, and the others are written
    in one pass. With `mailing_list` they are subscribed to it, confirmed by mail where the
    list asks for double opt-in (the caller cannot vouch for consent as an import does)."""
    fields = custom_fields_of(workspace)
    results: list[BulkItem] = []
    valid: list[tuple[int, ContactInput]] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, parse_contact(contact_payload(item, fields, ignored=ignored), fields)))
            results.append(BulkItem(index, "", None, {}))
        except ValidationError as error:
            results.append(BulkItem(index, REJECTED, None, error_fields(error)))
    if valid:
        outcomes = contacts_upsert(
            workspace=workspace,
            rows=[row for _index, row in valid],
            update_existing=update_existing,
            source=ConsentSource.API,
            mailing_list=mailing_list,
            consent_source=ConsentSource.API,
            consent_text=consent_text,
            confirm_by_mail=mailing_list is not None and mailing_list.double_opt_in,
        )
        for (index, _row), outcome in zip(valid, outcomes, strict=True):
            errors = {outcome.field: [outcome.error]} if outcome.status == REJECTED else {}
            results[index] = BulkItem(index, outcome.status, outcome.contact_id, errors)
    return BulkSaved(results)


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
        others = Contact.objects.in_workspace(workspace).filter(external_id=item.external_id).exclude(pk=contact.pk)
        if others.exists():
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
    segments_contacts_changed(workspace_id=workspace.pk, contact_ids=[contact.pk])
    return contact


@transaction.atomic
def contact_delete(*, workspace: Workspace, contact_id: int) -> None:
    contact = get_object_or_404(Contact.objects.in_workspace(workspace), pk=contact_id)
    segment_memberships_forget(workspace_id=workspace.pk, contacts=Contact.objects.filter(pk=contact.pk))
    contact.delete()
    hooks.contacts_erased.fire(hooks.ContactsErased(workspace.pk, (contact_id,)))


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

    @classmethod
    def from_request(cls, meta: Mapping[str, Any], source: str, text: str = "") -> ConsentContext:
        """From a request's META: the client's address (if it is one) and user agent."""
        return cls(source, client_ip(meta), str(meta.get("HTTP_USER_AGENT", ""))[:400], text)


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


# How long a pending subscription's confirmation mail stands before asking again sends another.
CONFIRMATION_WINDOW = timedelta(hours=24)


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
    if (
        not _created
        and mailing_list.double_opt_in
        and subscription.status == SubscriptionStatus.PENDING
        and subscription.updated_at > now - CONFIRMATION_WINDOW
    ):
        # One confirmation mail per address and list in the window: a stranger posting someone's
        # address again and again must not fill that inbox (the row lock orders concurrent posts).
        return subscription
    subscription.status = SubscriptionStatus.PENDING if mailing_list.double_opt_in else SubscriptionStatus.SUBSCRIBED
    subscription.confirmed_at = None if mailing_list.double_opt_in else now
    subscription.unsubscribed_at = None
    subscription.updated_at = now
    subscription.save()
    _record(contact, mailing_list, ConsentAction.SUBSCRIBED, context)
    segments_contacts_changed(workspace_id=workspace.pk, contact_ids=[contact.pk])
    if mailing_list.double_opt_in:
        enqueue_after_commit(send_confirmation_email, subscription.pk)
    else:
        hooks.contacts_subscribed.fire(hooks.ContactsSubscribed(workspace.pk, (contact.pk,), mailing_list.pk))
    return subscription


CONFIRM_SALT = "audiences.confirm"
CONFIRM_MAX_AGE = 7 * 24 * 3600


def confirmation_url(subscription: Subscription) -> str:
    token = signing.dumps({"s": subscription.pk, "w": subscription.workspace_id}, salt=CONFIRM_SALT)
    return f"{settings.PUBLIC_BASE_URL}/subscribe/confirm/{token}/"


def subscription_by_token(token: str) -> Subscription | None:
    """The subscription a confirmation link names; None when the link is forged or expired."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.BadSignature:
        return None
    return (
        Subscription.objects.select_related("mailing_list", "workspace", "contact")
        .filter(pk=data.get("s"), workspace_id=data.get("w"))
        .first()
    )


def subscription_confirmation_send(*, subscription_id: int) -> None:
    """Mail the double opt-in link, in the contact's language; nothing once it is confirmed."""
    subscription = (
        Subscription.objects.select_related("contact", "mailing_list", "workspace").filter(pk=subscription_id).first()
    )
    if subscription is None or subscription.status != SubscriptionStatus.PENDING:
        return
    # The contact's locale is the recipient's own language when the service speaks it;
    # otherwise the account-mail rule (esp.mail) gives the workspace's language of emails.
    locale = (subscription.contact.locale or "")[:2].lower()
    language = locale if locale in dict(settings.LANGUAGES) else account_mail_language(workspace=subscription.workspace)
    with override(language):
        send_templated_mail(
            to=subscription.contact.email,
            subject=_("Please confirm your subscription to %(list)s") % {"list": subscription.mailing_list.name},
            template="mail/confirm_subscription",
            context={"subscription": subscription, "url": confirmation_url(subscription)},
            workspace=subscription.workspace,
        )


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
        segments_contacts_changed(workspace_id=subscription.workspace_id, contact_ids=[subscription.contact_id])
        hooks.contacts_subscribed.fire(
            hooks.ContactsSubscribed(
                subscription.workspace_id, (subscription.contact_id,), subscription.mailing_list_id
            )
        )
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
    segments_contacts_changed(workspace_id=workspace.pk, contact_ids=[contact.pk])
    hooks.contacts_unsubscribed.fire(hooks.ContactsUnsubscribed(workspace.pk, (contact.pk,), mailing_list.pk))
    return subscription


# --- suppressions ---------------------------------------------------------------------------


@transaction.atomic
def suppression_add(*, workspace: Workspace, email: str, reason: str, note: str = "") -> Suppression:
    """Suppress an address (an existing entry is kept as it is). Fires "contacts suppressed",
    and for reason "unsubscribed" also "contacts unsubscribed" from all marketing."""
    if reason not in SuppressionReason.values:
        raise ValidationError({"reason": _("Unknown reason.")})
    suppression, created = Suppression.objects.get_or_create(
        workspace=workspace,
        email_hash=email_hash(email),
        defaults={"email": email.strip(), "reason": reason, "note": note[:400]},
    )
    if created:
        contact_ids = hooks.ids(
            Contact.objects.in_workspace(workspace)
            .filter(email__lower=email.strip().lower())
            .values_list("pk", flat=True)
        )
        hooks.contacts_suppressed.fire(hooks.ContactsSuppressed(workspace.pk, (email.strip(),), contact_ids, reason))
        if reason == SuppressionReason.UNSUBSCRIBED:
            hooks.contacts_unsubscribed.fire(hooks.ContactsUnsubscribed(workspace.pk, contact_ids, None))
    return suppression


@transaction.atomic
def suppression_lift(*, workspace: Workspace, suppression_id: int) -> None:
    """Only an owner may lift a suppression (the views and API check the role)."""
    get_object_or_404(Suppression.objects.in_workspace(workspace), pk=suppression_id).delete()


# --- custom fields --------------------------------------------------------------------------

# Custom field keys are template variables (`contact.key`) and top-level names in contact
# payloads, so they are identifiers and must not shadow a standard field.
CUSTOM_FIELD_KEY_RE = r"^[a-z][a-z0-9_]{0,63}$"
RESERVED_FIELD_KEYS = frozenset(
    {"id", "email", "external_id", "first_name", "last_name", "gender", "birth_date", "phone", "city", "country"}
    | {"time_zone", "locale", "attributes", "tags", "source", "created_at", "updated_at", "subscriptions", "list"}
)


@transaction.atomic
def custom_field_save(*, workspace: Workspace, data: dict[str, Any], field_id: int | None = None) -> CustomField:
    """Declare a typed custom field, or change its label and choices. The key and the type are
    fixed once created: contacts' stored values are keyed and typed by them."""
    fields = CustomField.objects.in_workspace(workspace)
    field = get_object_or_404(fields.select_for_update(), pk=field_id) if field_id else None
    errors: dict[str, str] = {}
    if field is None:
        key = str(data.get("key") or "").strip()
        field_type = str(data.get("type") or FieldType.TEXT)
        if not re.fullmatch(CUSTOM_FIELD_KEY_RE, key):
            errors["key"] = _("Lower-case letters, digits and underscores, starting with a letter (at most 64).")
        elif key in RESERVED_FIELD_KEYS:
            errors["key"] = _("%(key)s is a standard contact field.") % {"key": key}
        elif fields.filter(key=key).exists():
            errors["key"] = _("A custom field with this key exists already.")
        if field_type not in FieldType.values:
            errors["type"] = _("One of: %(choices)s.") % {"choices": ", ".join(FieldType.values)}
        field = CustomField(workspace=workspace, key=key, type=field_type)
    else:
        if "key" in data and data["key"] != field.key:
            errors["key"] = _("The key cannot be changed; create a new field instead.")
        if "type" in data and data["type"] != field.type:
            errors["type"] = _("The type cannot be changed; create a new field instead.")
    label = str(data.get("label", field.label) or "").strip() or field.key
    choices = [str(choice).strip() for choice in data.get("choices", field.choices) or []]
    if field.type == FieldType.CHOICE:
        if not [choice for choice in choices if choice]:
            errors["choices"] = _("A choice field needs at least one choice.")
        elif len(set(choices)) != len(choices) or "" in choices:
            errors["choices"] = _("Choices must be distinct and not empty.")
    else:
        choices = []
    if errors:
        raise ValidationError(errors)
    field.label = label[:120]
    field.choices = choices
    field.save()
    return field


@transaction.atomic
def custom_field_delete(*, workspace: Workspace, field_id: int, purge_values: bool = False) -> None:
    """Remove the field. Its values stay on the contacts (declaring the key again brings them
    back), unless `purge_values`: then they are removed from every contact in one statement."""
    field = get_object_or_404(CustomField.objects.in_workspace(workspace), pk=field_id)
    if purge_values:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audiences_contact SET attributes = attributes - %s WHERE workspace_id = %s AND attributes ? %s",
                [field.key, workspace.pk, field.key],
            )
    field.delete()


# --- subscribing by address -----------------------------------------------------------------


@transaction.atomic
def subscription_subscribe_by(
    *,
    workspace: Workspace,
    mailing_list: MailingList,
    contact_id: int | None = None,
    email: str = "",
    context: ConsentContext,
) -> tuple[Subscription, bool]:
    """Subscribe a contact given by id, or an address (a new one becomes a contact). Returns
    the subscription and whether it is new (False: the contact had one to this list)."""
    if contact_id is not None:
        contact = Contact.objects.in_workspace(workspace).filter(pk=contact_id).first()
        if contact is None:
            raise ValidationError({"contact_id": _("No such contact.")})
    else:
        address = email.strip().lower()
        contact = Contact.objects.in_workspace(workspace).filter(email__lower=address).first() if address else None
    existed = (
        contact is not None
        and Subscription.objects.in_workspace(workspace).filter(contact=contact, mailing_list=mailing_list).exists()
    )
    if contact is not None:
        subscription = subscription_subscribe(
            workspace=workspace, contact=contact, mailing_list=mailing_list, context=context
        )
    else:
        subscription = subscription_subscribe_address(
            workspace=workspace, mailing_list=mailing_list, email=email, context=context
        )
    return subscription, not existed


@transaction.atomic
def subscription_subscribe_address(
    *, workspace: Workspace, mailing_list: MailingList, email: str, context: ConsentContext
) -> Subscription:
    """Subscribe an address, creating its contact when it is new (in the same transaction, so a
    refused subscription leaves no contact behind)."""
    contact = (
        Contact.objects.in_workspace(workspace).filter(email__lower=email.strip().lower()).first()
        if email.strip()
        else None
    )
    if contact is None:
        if is_suppressed(workspace=workspace, email=email):
            raise ValidationError({"email": _("This address is on the suppression list and cannot be subscribed.")})
        contact, _created = contact_save(workspace=workspace, data={"email": email}, source=context.source)
    return subscription_subscribe(workspace=workspace, contact=contact, mailing_list=mailing_list, context=context)
