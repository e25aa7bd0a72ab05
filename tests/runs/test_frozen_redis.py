"""A Redis that hangs (SIGSTOPped: connections open, nothing answers) instead of refusing: pages
still answer at once with the banner, the Cluster page says it cannot read the registry (not that
no worker is online), and starting a run creates nothing and says why."""

import os
import signal
import time

import pytest
from django.urls import reverse

from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.test_faults import private_redis, redis_for_pages  # noqa: F401 (fixtures)
from tests.runs.test_limits import NORMAL

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_pages_and_run_starts_do_not_hang_on_a_frozen_redis(redis_for_pages, client, alice, project):
    scenario = store_scenario(project, alice, name="Frozen", content=NORMAL)
    client.force_login(alice)
    os.kill(redis_for_pages.process.pid, signal.SIGSTOP)
    try:
        cluster, took = _timed(lambda: client.get(reverse("runs-cluster")))
        page = " ".join(cluster.content.decode().split())
        assert cluster.status_code == 200 and took < 5, took
        assert "The worker registry cannot be read" in page and "No load workers online" not in page
        assert "Redis, the broker, is unreachable" in page
        form, took = _timed(lambda: client.get(reverse("runs-create", args=[scenario.pk])))
        assert form.status_code == 200 and took < 5, took
        posted, took = _timed(lambda: client.post(reverse("runs-create", args=[scenario.pk]), {
            "users": 1, "spawn_rate": 1, "duration": "10s", "host": "http://127.0.0.1:9", "slots": 1,
            "stop_timeout": 1}))
        assert posted.status_code == 200 and took < 5, took
        assert "The broker (Redis) is unreachable, so the run was not created." in " ".join(
            posted.content.decode().split())
        assert not Run.objects.exists()
    finally:
        os.kill(redis_for_pages.process.pid, signal.SIGCONT)
