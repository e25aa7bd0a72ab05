"""Stop everything's deadline at the slot: `stop_within` in the control hash bounds how long a pool's
users may go on after the stop, whatever the run's stop timeout. Real Redis, pool processes, nginx."""

import time

from tests.workers.conftest import pools_alive, wait_until

LONG_TASK = b'''\
import time

from locust import FastHttpUser, constant, task


class Patient(FastHttpUser):
    wait_time = constant(0)

    @task
    def checkout_flow(self):
        while True:  # one task that never ends by itself
            self.client.get("/ok")
            time.sleep(0.02)
'''

SPINNER = b'''\
from locust import FastHttpUser, constant, task


class Spinner(FastHttpUser):
    wait_time = constant(0)

    @task
    def spin(self):
        self.client.get("/ok")
        while True:  # never yields: no stop reaches the users
            pass
'''


def stop_within(run, seconds: float) -> float:
    run.redis.hset(run.control, mapping={"stop": "1", "stop_within": repr(seconds)})
    return time.monotonic()


def test_a_pool_stops_its_users_within_stop_within_despite_a_long_stop_timeout(slot_run, target):
    target.reset()
    run = slot_run(LONG_TASK, host=target.url, users=2, stop_timeout=30.0)
    run.start()
    run.wait_for("ready")
    run.go()
    wait_until(lambda: target.counts().get(("GET", "/ok", 200), 0) > 20, 15, message="requests at nginx")
    pressed = time.time()
    stop_within(run, 1.0)
    assert run.join(15) == "finished"
    assert run.snapshots()[-1]["kind"] == "final"
    last = max(at for at, _, uri, _ in target.served_at() if uri == "/ok")
    assert last - pressed < 1.0 + 0.5  # the slot's poll (0.2 s) and the requests in flight


def test_a_pool_that_ignores_the_stop_is_killed_a_second_after_stop_within(slot_run, target):
    target.reset()
    run = slot_run(SPINNER, host=target.url, users=1, stop_timeout=30.0)
    run.start()
    run.wait_for("ready")
    run.go()
    wait_until(lambda: target.counts().get(("GET", "/ok", 200), 0) >= 1, 15, message="the spinner's request")
    time.sleep(0.5)
    pressed = stop_within(run, 1.0)
    assert run.join(15) == "error"
    assert time.monotonic() - pressed < 1.0 + 1.0 + 1.0  # stop_within, the kill grace, the slot's last steps
    error = run.of("error")[-1]
    assert error["message"] == "The pool did not stop within 2 s of the stop; it was killed."
    assert pools_alive() == []
