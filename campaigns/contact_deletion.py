"""The contacts' emails when contacts are deleted in bulk (audiences.bulk): the messages stay in
the send log (a broadcast's counts stay true) and lose their link to the contact, as the
foreign key's SET_NULL does for a single deletion. Registered from CampaignsConfig.ready()."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from audiences.bulk import CONTACTS_DELETING, DELETE_COUNTERS
from audiences.models import Contact
from campaigns.models import Message, MessageEvent


def detach_messages(workspace_id: int, contact_ids: list[int]) -> None:
    # Events through their message (indexed), then the messages (by contact, indexed).
    messages = Message.objects.filter(workspace_id=workspace_id, contact_id__in=contact_ids)
    MessageEvent.objects.filter(workspace_id=workspace_id, message__in=messages.values("pk")).update(contact=None)
    messages.update(contact=None)


def messages_of(workspace_id: int, contacts: QuerySet[Contact]) -> tuple[str, QuerySet[Message]]:
    messages = Message.objects.filter(workspace_id=workspace_id, contact_id__in=contacts.order_by().values("pk"))
    return _("Emails sent to them (kept in the send log, without the contact)"), messages


def register() -> None:
    if detach_messages not in CONTACTS_DELETING:
        CONTACTS_DELETING.append(detach_messages)
    if messages_of not in DELETE_COUNTERS:
        DELETE_COUNTERS.append(messages_of)
