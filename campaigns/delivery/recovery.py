"""After a worker died (kill -9, lost host, OOM): the rows it held.

- `claimed` for longer than the lease: never handed to a provider, so back to the queue. A
  live worker gives back its unsent claims after half the lease, so only a dead one's are old.
- `sending` for longer than any provider call can take: the provider may have the message.
  Marked `in_doubt` with reason `crashed` and never sent again (DESIGN rule 3: a marketing
  email may be lost in a crash, never doubled).

Run every minute by beat (`campaigns.recover_messages`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from campaigns.delivery.claims import LEASE, SENDING_TIMEOUT
from campaigns.models import SkipReason


@dataclass(frozen=True)
class Recovered:
    requeued: int
    in_doubt: int


def messages_recover(
    *, claimed_after: dt.timedelta = LEASE, sending_after: dt.timedelta = SENDING_TIMEOUT
) -> Recovered:
    now = timezone.now()
    with connection.cursor() as cursor:
        # Both read through the partial index on claimed_at of held rows.
        cursor.execute(
            """
            UPDATE campaigns_message SET state = 'queued', claimed_at = NULL
            WHERE state = 'claimed' AND claimed_at <= %s
            """,
            [now - claimed_after],
        )
        requeued = cursor.rowcount
        cursor.execute(
            """
            UPDATE campaigns_message SET state = 'in_doubt', reason = %s
            WHERE state = 'sending' AND claimed_at <= %s
            """,
            [SkipReason.CRASHED, now - sending_after],
        )
        in_doubt = cursor.rowcount
    return Recovered(requeued, in_doubt)
