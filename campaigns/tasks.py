"""Celery entry points of the campaigns app: thin, each calls one service."""

from __future__ import annotations

import logging

from celery import shared_task

from campaigns.delivery.drain import messages_drain
from campaigns.delivery.recovery import messages_recover

logger = logging.getLogger(__name__)


def _another_drain() -> None:
    try:
        send_messages.delay()
    except Exception:  # the broker being down delays sending; the beat tick restarts it
        logger.warning("broker unavailable; the next tick starts the drain", exc_info=True)


@shared_task(name="campaigns.send_messages")
def send_messages() -> int:
    """Drain due messages (started after commit by whoever queues messages, and by a beat tick
    every few seconds). Exits at once when SEND_CONCURRENCY drains run already."""
    return messages_drain(enqueue_more=_another_drain)


@shared_task(name="campaigns.recover_messages")
def recover_messages() -> dict[str, int]:
    """Rows a dead worker held: unsent claims back to the queue, hand-overs `in_doubt`."""
    recovered = messages_recover()
    return {"requeued": recovered.requeued, "in_doubt": recovered.in_doubt}


@shared_task(name="campaigns.tick_broadcasts")
def tick_broadcasts() -> dict[str, int]:
    """Start the scheduled broadcasts whose time came; close the finished ones."""
    # Imported here: delivery starts drains through this module, and must not reach broadcasts.
    from campaigns.broadcasts.services import broadcasts_tick

    return broadcasts_tick()
