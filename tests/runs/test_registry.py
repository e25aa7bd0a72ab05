"""The worker registry counts load workers only: the control worker imports workers.tasks too."""

import os
import signal
import sys
import time

import pytest

from runs import cluster as registry
from tests.runs.conftest import Process, database_url, start_worker, wait_for
from workers import protocol

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def start_control_worker(name: str) -> Process:
    """The control worker as `make run` starts it: `-Q control -c 1`, with Django and the database."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url(),
           "PYTHONUNBUFFERED": "1"}
    return Process(name, [sys.executable, "-m", "celery", "-A", "controlcenter", "worker", "-Q", "control", "-c", "1",
                          "-n", f"{name}@registry-test", "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
                   env)


def _online():
    return [w for w in registry.workers() if w.online]


def test_it_counts_only_the_slots_of_workers_that_consume_the_loadgen_queue(settings):
    settings.SWARMDECK_REQUIRE_ISOLATION = False  # count every online worker, isolated or not
    # Workers of earlier tests deregister when stopped; a killed one expires with its TTL.
    wait_for(lambda: not _online(), protocol.WORKER_TTL_SECONDS + 5, f"workers still online: {_online()}")
    control = start_control_worker("control-registry")
    loadgen = start_worker("machine-registry", concurrency=2)
    try:
        wait_for(lambda: "ready." in control.output(), 60, "the control worker never became ready:\n"
                 + control.output())
        wait_for(lambda: "ready." in loadgen.output(), 60, "the load worker never became ready:\n"
                 + loadgen.output())
        wait_for(lambda: registry.capacity() >= 2, 10, "the load worker never registered:\n" + loadgen.output())
        time.sleep(protocol.HEARTBEAT_SECONDS + 0.5)  # a registered control worker would have beaten by now

        assert registry.capacity() == 2
        assert [(w.host, w.slots) for w in _online()] == [("machine-registry", 2)]
        names = {w.name for w in registry.workers()}  # online and recently seen
        assert "loadgen@machine-registry" in names
        assert not any(name.startswith("control") for name in names), names
        assert "is not registered as a load worker" in control.output()
        assert "registered with 2 slot(s)" in loadgen.output()
    finally:
        control.kill(signal.SIGTERM)
        loadgen.kill(signal.SIGTERM)
    assert not _online()
