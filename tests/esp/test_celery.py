"""Celery runs a task end to end through the configured broker: the embedded Redis on a bare
machine, the Redis server in CI. The worker is a real one, in a thread of the test process."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker

from esp.celery import app
from esp.tasks import ping


@pytest.mark.django_db(transaction=True)
def test_task_runs_through_the_broker() -> None:
    assert app.conf.broker_url.startswith(("redis://", "redis+socket://"))
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        result = ping.delay("hello")
        assert result.get(timeout=30) == {"reply": "hello", "database": 1}


def test_celery_configuration_follows_design() -> None:
    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late is True and conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] >= 3600
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    for name in app.tasks:
        if not name.startswith("celery."):
            assert "." in name and name.split(".")[0] in {"esp", "audiences", "campaigns", "automations", "analytics"}
