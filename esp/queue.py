"""Handing work to Celery once the transaction that asked for it has committed.

DESIGN.md rule 4: a worker must never see a row that does not exist yet, and a broker that is
down may delay work but must not lose it or fail the request that asked for it. The row that
asked for the work (an import job, a pending subscription, an invitation) is committed either
way; when sending fails it is logged, and the work is picked up again by the beat sweepers
(stalled jobs) or by the person retrying.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_after_commit(task: Task[Any, Any], *args: Any) -> None:
    def send() -> None:
        try:
            task.apply_async(args=args)
        except Exception:
            logger.warning("broker unavailable; %s%r left for the sweeper", task.name, args, exc_info=True)

    transaction.on_commit(send)
