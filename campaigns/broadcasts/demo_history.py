"""The demo shop's past newsletters: one promo a month for the seventeen months before the demo
month, to the newsletter's subscribers the shop knew by then (their first event came before the
send), with the deliveries, opens (machine opens among them), clicks and soft bounces a month
brings. They give the reports eighteen months to show.

Written set-based (an INSERT … SELECT per month for the messages, one for their events), not
through the send loop: history is not sent again. Each month has its own rates, drawn from the
seed's random generator (November and December open better), and each message's outcome comes
from a hash of its id, so a seed is repeatable.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import connection
from django.utils import timezone

from audiences.models import MailingList
from campaigns.broadcast_models import Broadcast, BroadcastStatus
from campaigns.models import EmailTemplate, MessageSource
from esp.models import Workspace

MONTHS = 17
# (name, subject) by calendar month.
NEWSLETTERS = {
    1: ("January clearance", "Winter clearance: up to 40 % off"),
    2: ("Valentine's picks", "Gifts they will love, {{ contact.first_name|default:'friend' }}"),
    3: ("Spring arrivals", "New in: the spring collection"),
    4: ("Easter weekend", "Easter weekend: 15 % off outdoor gear"),
    5: ("May favourites", "Our customers' favourites this month"),
    6: ("Summer sale", "Summer sale starts now"),
    7: ("Holiday packing list", "Everything for the holidays, in one place"),
    8: ("Back to school", "Back to school: kids' shoes and bags"),
    9: ("Autumn edit", "The autumn edit is here"),
    10: ("Coffee month", "Fresh roasts for October"),
    11: ("Black Friday", "Black Friday: our best prices of the year"),
    12: ("Christmas gift guide", "The Christmas gift guide, {{ contact.first_name|default:'friend' }}"),
}
PLACEHOLDER = "{{ contact.first_name|default:'friend' }}"
LANDING = "https://demo.shop/newsletter/{month}?utm_source=mini-esp&utm_medium=email&utm_campaign={slug}"

_MESSAGES = """
    INSERT INTO campaigns_message (workspace_id, contact_id, to_email, source, message_class, priority,
        smart_sending, template_id, subject_override, preheader_override, mailing_list_id, data, state, reason,
        error, attempts, due_at, created_at, claimed_at, sent_at, subject, provider_message_id, links,
        delivery_status, delivered_at, opened_at, clicked_at)
    SELECT %(ws)s, c.id, c.email, %(source)s, 'marketing', 10, false, %(template)s, '', '', %(list)s, '{}',
        'sent', '', '', 1, %(at)s, %(at)s, %(at)s, x.sent_at,
        replace(%(subject)s, %(placeholder)s, coalesce(nullif(c.first_name, ''), 'friend')),
        'demo-' || c.id || '-' || %(month)s,
        ARRAY[%(link)s], CASE WHEN x.r < %(bounce)s THEN 'soft_bounced' ELSE 'delivered' END,
        CASE WHEN x.r >= %(bounce)s THEN x.sent_at + interval '15 seconds' END,
        CASE WHEN x.r >= %(bounce)s AND x.o < %(open)s THEN x.sent_at + x.o * interval '60 hours' END,
        CASE WHEN x.r >= %(bounce)s AND x.o < %(click)s THEN x.sent_at + x.o * interval '60 hours'
             + interval '4 minutes' END
    FROM audiences_contact c
    JOIN audiences_subscription s ON s.contact_id = c.id AND s.mailing_list_id = %(list)s
    CROSS JOIN LATERAL (
        SELECT %(at)s::timestamptz + (c.id %% 3600) * interval '1 second' AS sent_at,
               abs(hashint8(c.id * 31 + %(month)s)) %% 10000 / 10000.0 AS r,
               abs(hashint8(c.id * 17 + %(month)s * 7)) %% 10000 / 10000.0 AS o
    ) x
    WHERE c.workspace_id = %(ws)s AND c.email <> ''
      AND EXISTS (SELECT 1 FROM audiences_event e WHERE e.contact_id = c.id AND e.occurred_at < %(at)s)
"""

# The engagement the message rows say they had, as the tracking endpoints and webhooks record it.
_EVENTS = """
    INSERT INTO campaigns_messageevent (workspace_id, message_id, contact_id, type, occurred_at, event_key, url,
        user_agent, is_machine, details)
    SELECT m.workspace_id, m.id, m.contact_id, k.type, k.at, 'demo-history:' || m.id || ':' || k.name, k.url,
        k.agent, k.machine, k.details
    FROM campaigns_message m
    CROSS JOIN LATERAL (VALUES
        ('delivered', 'delivered', m.delivered_at, '', '', false, '{}'::jsonb),
        ('soft_bounced', 'bounce', CASE WHEN m.delivery_status = 'soft_bounced' THEN m.sent_at
            + interval '1 minute' END, '', '', false, '{"bounce_type": "soft"}'::jsonb),
        ('opened', 'mpp', CASE WHEN m.delivered_at IS NOT NULL AND m.id %% 7 = 0
            THEN m.sent_at + interval '1 minute' END, '', 'Mozilla/5.0', true, '{}'::jsonb),
        ('opened', 'open', m.opened_at, '', %(agent)s, false, '{}'::jsonb),
        ('clicked', 'click', m.clicked_at, m.links[1], %(agent)s, false, '{"link": 0}'::jsonb)
    ) AS k(type, name, at, url, agent, machine, details)
    WHERE m.workspace_id = %(ws)s AND m.source = ANY(%(sources)s) AND k.at IS NOT NULL
"""


def seed_history(
    workspace: Workspace, template: EmailTemplate, newsletter: MailingList, rng: random.Random, *, before: dt.datetime
) -> int:
    """The monthly newsletters sent before `before`; how many messages they made."""
    now = timezone.now()
    zone = workspace.zone
    this_month = timezone.localtime(now, zone).date().replace(day=1)
    sources: list[str] = []
    made = 0
    for months_ago in range(MONTHS, 0, -1):
        year, month = divmod(this_month.year * 12 + this_month.month - 1 - months_ago, 12)
        month += 1
        at = dt.datetime(year, month, 10, 10, 0, tzinfo=zone)
        if at >= before:
            continue
        name, subject = NEWSLETTERS[month]
        festive = month in (11, 12)
        opens = rng.uniform(0.30, 0.42) + (0.08 if festive else 0.0)
        clicks = opens * rng.uniform(0.18, 0.32)
        broadcast = Broadcast.objects.create(
            workspace=workspace,
            name=f"{name} {year}",
            status=BroadcastStatus.SENT,
            include_lists=[newsletter.pk],
            template=template,
            subject=subject,
            started_at=at,
            finished_at=at + dt.timedelta(hours=1),
            created_at=at - dt.timedelta(days=2),
            updated_at=at + dt.timedelta(hours=1),
        )
        source = str(MessageSource.broadcast(broadcast.pk))
        slug = "-".join(name.lower().replace("'", "").split()) + f"-{year}"
        with connection.cursor() as cursor:
            cursor.execute(
                _MESSAGES,
                {
                    "ws": workspace.pk,
                    "source": source,
                    "template": template.pk,
                    "list": newsletter.pk,
                    "at": at,
                    "subject": subject,
                    "placeholder": PLACEHOLDER,
                    "month": year * 12 + month,
                    "link": LANDING.format(month=f"{year}-{month:02d}", slug=slug),
                    "bounce": 0.012,
                    "open": opens,
                    "click": clicks,
                },
            )
            count = cursor.rowcount
        Broadcast.objects.filter(pk=broadcast.pk).update(recipients=count)
        sources.append(source)
        made += count
    if sources:
        with connection.cursor() as cursor:
            cursor.execute(
                _EVENTS,
                {"ws": workspace.pk, "sources": sources, "agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)"},
            )
    return made
