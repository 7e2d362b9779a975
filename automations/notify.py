"""Internal mail of a series' notify step: "VIP placed a big order" to the team.

It goes through the service's own account mail (esp.mail), not the send road of contacts: the
recipient is a member or an address of the shop, not a contact, so none of the marketing rules
of a Message (one row per contact, suppression, caps, quiet hours, smart sending, the
unsubscribe footer) applies or should. It is sent by a task after the step's run commits, never
inside it (a rolled-back run mails nobody); a task delivered twice is kept from mailing twice
by a key per enrollment and step.

Many contacts reaching the step at once (a promo start) make one summary mail, not a flood.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import override

from automations.models import Enrollment, SeriesVersion
from esp.mail import account_mail_language, send_templated_mail
from esp.models import Membership, Role, User

OWNERS = "owners"
# Up to this many contacts in one run of the step get a mail each; more make one summary.
MAX_SINGLE = 10
SUMMARY_LINES = 50
_SENT_FOR = 7 * 24 * 3600


def _recipients(step: dict[str, Any], workspace_id: int) -> list[tuple[str, User | None]]:
    if step.get("to", OWNERS) != OWNERS:
        return [(step["to"], None)]
    owners = User.objects.filter(
        pk__in=Membership.objects.filter(workspace_id=workspace_id, role=Role.OWNER).values("user_id"), is_active=True
    ).order_by("pk")
    return [(user.email, user) for user in owners]


def _contact_lines(enrollment: Enrollment) -> dict[str, Any]:
    contact = enrollment.contact
    return {
        "email": contact.email,
        "name": contact.full_name,
        "external_id": contact.external_id,
        "url": f"{settings.PUBLIC_BASE_URL}{reverse('contact', args=[contact.pk])}",
        "data": sorted((str(k), str(v)[:200]) for k, v in (enrollment.entry_data or {}).items())[:20],
    }


def notifications_send(*, version_id: int, step_key: str, enrollment_ids: Sequence[int]) -> int:
    """Mail the step's recipients about these enrollments; how many mails went."""
    version = SeriesVersion.objects.select_related("series", "series__workspace").filter(pk=version_id).first()
    step = version.step(step_key) if version is not None else None
    if version is None or step is None:
        return 0
    fresh = [
        pk for pk in sorted(set(enrollment_ids)) if cache.add(f"automations:notified:{pk}:{step_key}", 1, _SENT_FOR)
    ]
    enrollments = list(
        Enrollment.objects.select_related("contact")
        .filter(pk__in=fresh, series_id=version.series_id)
        .order_by("pk")[: max(MAX_SINGLE, SUMMARY_LINES) + 1]
    )
    count = Enrollment.objects.filter(pk__in=fresh, series_id=version.series_id).count()
    if not enrollments:
        return 0
    series, workspace = version.series, version.series.workspace
    people = [_contact_lines(e) for e in enrollments]
    sent = 0
    for address, user in _recipients(step, workspace.pk):
        with override(account_mail_language(email=address, user=user, workspace=workspace)):
            if count <= MAX_SINGLE:
                for person in people:
                    send_templated_mail(
                        to=address,
                        subject=f"{step['subject']} — {person['name'] or person['email']}"[:250],
                        template="mail/series_notify",
                        context={"step": step, "series": series, "people": [person], "more": 0},
                        workspace=workspace,
                    )
                    sent += 1
            else:
                send_templated_mail(
                    to=address,
                    subject=_("%(subject)s — %(count)d contacts") % {"subject": step["subject"], "count": count},
                    template="mail/series_notify",
                    context={
                        "step": step,
                        "series": series,
                        "people": people[:SUMMARY_LINES],
                        "more": max(count - SUMMARY_LINES, 0),
                    },
                    workspace=workspace,
                )
                sent += 1
    return sent
