"""The KPI digest: the headline figures of the last week (or day) against the one before, and
the goals' progress, mailed to the members who asked for it (DigestSettings).

It goes through the send road as transactional mail: one Message per member and period, of a
workspace template "KPI digest" (made the first time, editable like any template), with the
figures as the template's `event`. The digest is the team's own mail, so the message has no
contact (as a test send has none) and the member never becomes a contact of the audience.

Idempotent per period: a DigestSent row (unique on workspace, member, frequency and the
period's first day) is written in the transaction that queues the message, so a second beat,
a retried task or two beats at once never make two digests of one week. A weekly digest covers
Monday to Sunday and goes on Monday; a daily one covers yesterday (days in the workspace's
zone).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.goals.services import goals_progress
from analytics.journey_models import DigestFrequency, DigestSent, DigestSettings
from analytics.selectors import totals
from campaigns.delivery.services import start_drain
from campaigns.models import EmailTemplate, Message, MessageClass, MessageSource, SendPriority
from esp.models import Membership, User, Workspace

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "KPI digest"
TEMPLATE_MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-text font-size="20px">{{ event.title }}</mj-text>
<mj-text>{{ event.period }}</mj-text>
<mj-table>
{% for row in event.figures %}<tr><td>{{ row.label }}</td><td align="right">{{ row.value }}</td>
<td align="right">{{ row.change }}</td></tr>{% endfor %}
</mj-table>
{% if event.goals %}<mj-text font-size="16px">{{ event.goals_title }}</mj-text>
<mj-table>{% for goal in event.goals %}<tr><td>{{ goal.name }}</td><td align="right">{{ goal.current }}</td>
<td align="right">{{ goal.target }}</td><td>{{ goal.status }}</td></tr>{% endfor %}</mj-table>{% endif %}
<mj-button href="{{ event.link }}">{{ event.link_text }}</mj-button>
</mj-column></mj-section></mj-body></mjml>"""

HEADLINE = ("sent", "delivered", "opened", "clicked", "unsubscribed", "complained")
HEADLINE_RATES = ("open_rate", "click_rate", "unsubscribe_rate", "complaint_rate")


def digest_settings_save(*, workspace: Workspace, user: User, frequency: str) -> DigestSettings:
    if frequency not in DigestFrequency.values:
        raise ValueError(frequency)
    settings, _created = DigestSettings.objects.update_or_create(
        workspace=workspace, user=user, defaults={"frequency": frequency}
    )
    return settings


def digest_period(frequency: str, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """The period a digest sent today covers: last week (on Mondays) or yesterday."""
    if frequency == DigestFrequency.DAILY:
        day = today - dt.timedelta(days=1)
        return day, day
    if frequency == DigestFrequency.WEEKLY:
        monday = today - dt.timedelta(days=today.weekday())
        return monday - dt.timedelta(days=7), monday - dt.timedelta(days=1)
    return None


def digest_content(*, workspace: Workspace, start: dt.date, end: dt.date, language: str = "en") -> dict[str, Any]:
    """The figures of the digest as plain values (the template's `event`), in `language`."""
    from django.conf import settings
    from django.utils import translation
    from django.utils.translation import gettext as _

    from analytics.kpis import COUNTERS, RATES, change
    from analytics.templatetags.reports import percent, relative_change

    days = (end - start).days + 1
    now_t = totals(workspace=workspace, start=start, end=end)
    before = totals(workspace=workspace, start=start - dt.timedelta(days=days), end=start - dt.timedelta(days=1))
    with translation.override(language):
        labels = {c.name: str(c.label) for c in COUNTERS} | {r.name: str(r.label) for r in RATES}
        figures = [
            {"label": labels[n], "value": getattr(now_t, n),
             "change": relative_change(change(getattr(now_t, n), getattr(before, n)))}
            for n in HEADLINE
        ] + [
            {"label": labels[n], "value": percent(now_t.rates()[n], 2), "change": ""} for n in HEADLINE_RATES
        ]  # fmt: skip
        goal_rows = []
        for item in goals_progress(workspace=workspace, today=end):
            rate = item.is_rate
            shown = (lambda v: percent(v, 2)) if rate else (lambda v: "—" if v is None else f"{v:,.0f}")
            status = (
                _("reached") if item.pace.reached else
                _("on track") if item.pace.on_track else
                _("behind") if item.pace.on_track is False else ""
            )  # fmt: skip
            goal_rows.append(
                {"name": item.goal.name, "current": shown(item.pace.current), "target": shown(item.target),
                 "status": status}
            )  # fmt: skip
        return {
            "title": _("%(workspace)s: your email figures") % {"workspace": workspace.name},
            "period": f"{start.isoformat()} – {end.isoformat()}",
            "figures": figures,
            "goals_title": _("Goals"),
            "goals": goal_rows,
            "link": f"{settings.PUBLIC_BASE_URL.rstrip('/')}/reports/?period=custom&from={start}&to={end}",
            "link_text": _("Open the reports"),
        }


def _template(workspace: Workspace) -> EmailTemplate:
    from campaigns.content.services import template_create

    found = EmailTemplate.objects.in_workspace(workspace).filter(name=TEMPLATE_NAME).first()
    if found is not None:
        return found
    return template_create(
        workspace=workspace,
        data={
            "name": TEMPLATE_NAME,
            "subject": "{{ event.title }} ({{ event.period }})",
            "mjml": TEMPLATE_MJML,
            "message_class": MessageClass.TRANSACTIONAL,
            "use_layout": False,
        },
    )


def digest_send(*, workspace: Workspace, user: User, frequency: str, today: dt.date) -> Message | None:
    """Queue one member's digest of the period ending before `today`; None when that period's
    digest was made already (or the frequency is off)."""
    period = digest_period(frequency, today)
    if period is None:
        return None
    start, end = period
    language = (getattr(user, "language", "") or workspace.language or "en")[:2]
    content = digest_content(workspace=workspace, start=start, end=end, language=language)
    template = _template(workspace)
    try:
        with transaction.atomic():
            sent = DigestSent.objects.create(workspace=workspace, user=user, frequency=frequency, period_start=start)
            message = Message.objects.create(
                workspace=workspace,
                contact=None,
                source=str(MessageSource.transactional(f"digest:{user.pk}:{frequency}:{start.isoformat()}")),
                message_class=MessageClass.TRANSACTIONAL,
                priority=SendPriority.TRANSACTIONAL,
                template=template,
                to_email=user.email,
                data=json.loads(json.dumps({"event": content}, cls=DjangoJSONEncoder)),
            )
            sent.message_id = message.pk
            sent.save(update_fields=["message_id"])
            start_drain()
    except IntegrityError:
        return None  # this period's digest exists: a second beat, or a retry
    return message


def digests_send_due(*, now: dt.datetime | None = None) -> int:
    """The beat's job: every member who asked for a digest and has not had this period's."""
    now = now or timezone.now()
    queued = 0
    rows = DigestSettings.objects.exclude(frequency=DigestFrequency.OFF).select_related("workspace", "user")
    for row in rows:
        if not Membership.objects.filter(workspace=row.workspace, user=row.user).exists():
            continue
        today = now.astimezone(row.workspace.zone).date()
        if row.frequency == DigestFrequency.WEEKLY and today.weekday() != 0:
            # A weekly digest missed on Monday (beat down) still goes later that week.
            period = digest_period(DigestFrequency.WEEKLY, today)
            if (
                period
                and DigestSent.objects.filter(
                    workspace=row.workspace, user=row.user, frequency=row.frequency, period_start=period[0]
                ).exists()
            ):
                continue
        try:
            if digest_send(workspace=row.workspace, user=row.user, frequency=row.frequency, today=today):
                queued += 1
        except Exception:  # one workspace's trouble (a template problem) must not stop the others
            logger.exception("KPI digest failed for workspace %s", row.workspace_id)
    return queued
