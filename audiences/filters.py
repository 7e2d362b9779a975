"""Which contacts a page or a bulk action means: the contacts page's filter, as one queryset."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from audiences.models import Contact
from esp.models import Workspace


@dataclass(frozen=True)
class ContactFilter:
    q: str = ""
    list_id: int | None = None
    status: str = ""
    tag: str = ""

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> ContactFilter:
        list_id = data.get("list")
        return cls(
            q=str(data.get("q") or "").strip(),
            list_id=int(str(list_id)) if str(list_id or "").isdigit() else None,
            status=str(data.get("status") or ""),
            tag=str(data.get("tag") or "").strip(),
        )

    @property
    def is_empty(self) -> bool:
        return not (self.q or self.list_id or self.status or self.tag)


def contacts_matching(*, workspace: Workspace, contact_filter: ContactFilter) -> QuerySet[Contact]:
    contacts = Contact.objects.in_workspace(workspace)
    f = contact_filter
    if f.q:
        if "@" in f.q:
            contacts = contacts.filter(email__lower__startswith=f.q.lower())
        else:
            contacts = contacts.filter(
                Q(email__icontains=f.q) | Q(first_name__icontains=f.q) | Q(last_name__icontains=f.q)
            )
    if f.list_id:
        membership = Q(subscriptions__mailing_list_id=f.list_id)
        if f.status:
            membership &= Q(subscriptions__status=f.status)
        contacts = contacts.filter(membership)
    elif f.status:
        contacts = contacts.filter(subscriptions__status=f.status).distinct()
    if f.tag:
        contacts = contacts.filter(tags__contains=[f.tag])
    return contacts
