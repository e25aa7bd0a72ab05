"""An admin's controls over the whole cluster, end to end: two real load workers on two 'machines',
a real collector, and nginx saying what it served and when."""

import time

import pytest
from django.urls import reverse

from runs import cluster as registry
from runs import services
from runs.models import Run, RunSlot
from runs.redis import client as redis_client
from tests.conftest import store_scenario
from tests.runs.conftest import wait_for
from workers import protocol

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STOP_WITHIN = 5.0  # issue 11: every pool has stopped its users within 5 s of stop everything


def locustfile(path: str) -> bytes:
    return f'''\
from locust import FastHttpUser, constant, task


class Shopper(FastHttpUser):
    wait_time = constant(0.02)

    @task
    def hit(self):
        self.client.get("{path}")
'''.encode()


# A task that never ends by itself: a plain Stop would let it run on for the run's stop timeout.
ENDLESS_TASK = b'''\
import time

from locust import FastHttpUser, constant, task


class Patient(FastHttpUser):
    wait_time = constant(0)

    @task
    def checkout_flow(self):
        while True:
            self.client.get("/slot/charlie")
            time.sleep(0.02)
'''


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_user("root", password="root-password", is_staff=True)


@pytest.fixture
def undrained():
    """No worker stays drained after a test: the module's next test needs both."""
    yield
    redis_client().delete(protocol.WORKERS_DRAINING)


def start(project, user, path: str, content: bytes | None = None, **params):
    scenario = store_scenario(project, user, name=f"Load {path}", content=content or locustfile(path))
    return services.start_run(scenario, user=user, params={"users": 4, "spawn_rate": 100, "duration": 600,
                                                           "slots": 1, **params})


def running(run) -> bool:
    return Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING, total_requests__gt=0).exists()


def host_of(run) -> str:
    return wait_for(lambda: RunSlot.objects.filter(run=run, index=0).values_list("host", flat=True).first(), 30,
                    f"run {run.pk}'s slot never said where it runs")


def test_stop_everything_stops_every_projects_load_within_5_s_measured_at_the_target(
        cluster, target, client, admin, alice, project, charlie, charlies_project):
    shop = start(project, alice, "/slot/shop", host=target.url)
    theirs = start(charlies_project, charlie, "/slot/charlie", content=ENDLESS_TASK, host=target.url, stop_timeout=30)
    wait_for(lambda: running(shop) and running(theirs), 60, "the two runs never both got going")
    waiting = start(project, alice, "/slot/waiting", host=target.url)  # the cluster is full: it stays queued
    time.sleep(1)  # both pools at full speed

    client.force_login(admin)
    confirm = " ".join(client.get(reverse("runs-cluster-stop-all")).content.decode().split())
    assert '<strong id="stop-all-running">2</strong> running runs stop' in confirm
    assert '<strong id="stop-all-cancelling">1</strong> queued or starting run is cancelled' in confirm
    pressed = time.time()
    response = client.post(reverse("runs-cluster-stop-all"))
    assert response.status_code == 302 and response["Location"] == reverse("runs-cluster")

    for run in (shop, theirs):
        run = services.wait_until_done(run, timeout=60)
        assert run.status == Run.Status.FINISHED, run.reason
        assert any(h["note"] == "stopped by root (stop everything)" for h in run.history), run.history
        assert all(s.got_final for s in run.slots.all())
    waiting.refresh_from_db()
    assert waiting.status == Run.Status.CANCELLED

    served = target.served_at()
    for path in ("/slot/shop", "/slot/charlie"):
        times = [at for at, _, uri, status in served if uri == path and status == 200]
        assert any(pressed - 1 <= at < pressed for at in times), f"{path} was not loading at the press"
        last = max(times) - pressed
        print(f"{path}: last request {last:.3f} s after stop everything")
        assert last <= STOP_WITHIN, f"{path} was still served {last:.1f} s after stop everything"
    assert not [uri for _, _, uri, _ in served if uri == "/slot/waiting"]
    page = client.get(reverse("runs-cluster")).content.decode()
    assert "Stop everything: 2 runs stopping, 1 cancelled, in 2 projects." in page


def test_a_drained_worker_finishes_its_slot_takes_no_new_one_and_takes_slots_again_once_undrained(
        cluster, target, client, admin, alice, project, undrained):
    first = start(project, alice, "/slot/first", host=target.url)
    wait_for(lambda: running(first), 60, "the first run never got going")
    drained_host = host_of(first)
    other_host = ({"machine-a", "machine-b"} - {drained_host}).pop()
    name = f"loadgen@{drained_host}"

    client.force_login(admin)
    response = client.post(reverse("runs-cluster-drain"), {"worker": name})
    assert response.status_code == 302
    page = client.get(reverse("runs-cluster")).content.decode()
    assert "draining</span>" in page and "drained</span>" not in page

    # The draining worker's busy slot is in use: the other worker's free one is all admission counts.
    second = start(project, alice, "/slot/second", host=target.url)
    wait_for(lambda: running(second), 60, "the second run never got going")
    assert host_of(second) == other_host

    services.request_stop(first)  # the drained worker finishes its run as usual
    first = services.wait_until_done(first, timeout=60)
    assert first.status == Run.Status.FINISHED and first.total_requests > 0
    wait_for(lambda: "drained</span>" in client.get(reverse("runs-cluster")).content.decode(),
             protocol.HEARTBEAT_SECONDS * 3, "the worker never showed as drained once its run ended")
    assert registry.capacity() == 1  # the other worker's slot, busy with the second run

    third = start(project, alice, "/slot/third", host=target.url)
    time.sleep(2)  # the collector admits several times a second
    third.refresh_from_db()
    assert third.status == Run.Status.QUEUED  # the drained worker's free slot is not counted

    # A slot task that reaches the drained worker anyway (dispatched as if there were room) is left for others.
    assert services.dispatch(third)
    time.sleep(4)  # the drained worker, the only free one, gets the task twice in that time
    assert not redis_client().exists(protocol.claim_key(third.pk, 0))
    assert not [uri for _, _, uri, _ in target.served_at() if uri == "/slot/third"]
    worker = next(p for p in cluster["workers"] if p.name == f"worker-{drained_host}")
    assert f"Run {third.pk} slot 0 handed back to the queue: {name} is draining." in worker.output()

    response = client.post(reverse("runs-cluster-undrain"), {"worker": name})
    assert response.status_code == 302
    wait_for(lambda: running(third), 30, "the third run never got going once the worker was undrained")
    assert host_of(third) == drained_host
    for run in (second, third):
        services.request_stop(run)
        assert services.wait_until_done(run, timeout=60).status == Run.Status.FINISHED
