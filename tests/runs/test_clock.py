"""A worker whose wall clock is 5 s off (libfaketime on its Celery worker and slot) still starts
its users with the others: the start barrier uses Redis's clock. Its own module, so that no other
module's workers are online beside the two it starts."""

import signal
from pathlib import Path

import pytest

from runs import services
from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.conftest import start_collector, start_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")

STARTS = b'''\
import time
from locust import User, constant, events, task


class Clocked(User):
    wait_time = constant(0.1)

    def on_start(self):
        # When this pool's users really started, on this (unskewed) machine's clock.
        events.request.fire(request_type="START", name=f"{time.time():.6f} {id(self)}", response_time=0,
                            response_length=0, exception=None, context={})

    @task
    def idle(self):
        pass
'''


def test_it_starts_every_slot_together_when_a_workers_clock_is_5_s_off(target, alice, project):
    """libfaketime sets one worker's clock 5 s back (its Celery worker and slot: the sandboxed pool
    gets a clean environment). Users must still start on both slots within a fraction of a second."""
    if not FAKETIME_LIB.exists():
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    from runs import cluster

    right = start_worker("clock-right")
    wrong = start_worker("clock-wrong", LD_PRELOAD=str(FAKETIME_LIB), FAKETIME="-5s", FAKETIME_DONT_FAKE_MONOTONIC="1")
    # libfaketime sometimes makes the worker's sandbox probe fail (EINVAL from a wrapped call), and the
    # worker then registers as not isolated: this test is about clocks, so either kind may take the slot.
    collector = start_collector(SWARMDECK_REQUIRE_ISOLATION="0")
    try:
        wait_for(lambda: {w.host for w in cluster.workers() if w.online} >= {"clock-right", "clock-wrong"}, 30,
                 "the two workers never showed up")
        scenario = store_scenario(project, alice, name="Clocks", content=STARTS)
        run = services.start_run(scenario, user=alice, params={"users": 2, "spawn_rate": 100, "duration": 3,
                                                               "slots": 2, "host": target.url, "stop_timeout": 1})
        run = services.wait_until_done(run, timeout=60)
        assert run.status == Run.Status.FINISHED, run.reason
        assert {s.host for s in run.slots.all()} == {"clock-right", "clock-wrong"}
        starts = sorted(float(row["name"].split()[0]) for row in run.totals if row["method"] == "START")
        assert len(starts) == 2, run.totals
        assert starts[1] - starts[0] < 0.5, f"the slots started {starts[1] - starts[0]:.2f} s apart"
        assert all(tick.users == 2 for tick in run.ticks.filter(tick__lte=1))  # both slots in the same seconds
    finally:
        collector.kill(signal.SIGTERM)
        right.kill(signal.SIGTERM)
        wrong.kill(signal.SIGTERM)
