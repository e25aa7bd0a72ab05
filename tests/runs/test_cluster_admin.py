"""The Cluster page's admin controls, as views: only staff may stop everything or drain a worker;
the page shows each slot of each worker, naming a busy slot's run only to members of its project.
Workers are registered in the real Redis as their heartbeat writes them."""

import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from audit import log as audit_log
from runs import cluster as registry
from runs import services
from runs.models import Run
from runs.redis import client as redis_client
from tests.conftest import store_scenario
from workers import protocol
from workers import registry as worker_registry

BIG = "loadgen@big-machine"


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_user("root", password="root-password", is_staff=True)


@pytest.fixture
def recorded(monkeypatch):
    """What reaches the audit trail's entry point (its storage is tested in tests/audit)."""
    entries = []
    monkeypatch.setattr(audit_log, "record", lambda action, **kwargs: entries.append((action, kwargs)))
    return entries


@pytest.fixture
def big_worker():
    """One isolated worker with 12 slots, 2 of them busy (leases of run `lease_run`, set by the test)."""
    register(BIG, busy=2)
    yield BIG
    worker_registry.forget(redis_client(), BIG)
    redis_client().delete(protocol.WORKERS_DRAINING)


def register(name, busy):
    """`name`'s heartbeat, as workers.tasks writes it: 12 isolated slots, `busy` of them busy."""
    heartbeat = {"name": name, "host": "big-machine", "slots": 12, "busy": busy, "heartbeat": time.time(),
                 "isolated": True, "isolation": "bubblewrap (fake)"}
    worker_registry.beat(redis_client(), name, json.dumps(heartbeat), ttl=60)


def lease(worker, pid, run_id, slot):
    """A busy slot's lease, as workers.slot holds it."""
    worker_registry.hold_lease(redis_client(), worker, pid, run_id, slot)


@pytest.fixture
def queued(project, alice):
    scenario = store_scenario(project, alice)
    return services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9", "slots": 1})


def page(client, user):
    client.force_login(user)
    return " ".join(client.get(reverse("runs-cluster")).content.decode().split())


@pytest.mark.parametrize("method", ["get", "post"])
def test_only_staff_may_stop_everything(client, alice, charlie, charlies_project, queued, recorded, method):
    for user in (alice, charlie):  # a maintainer of the run's project, and an outsider
        client.force_login(user)
        response = getattr(client, method)(reverse("runs-cluster-stop-all"))
        assert response.status_code == 403
        assert b"Stop everything" not in response.content
    queued.refresh_from_db()
    assert queued.status == Run.Status.QUEUED
    assert recorded == []


def test_only_staff_may_drain_or_undrain_a_worker(client, alice, big_worker, recorded):
    client.force_login(alice)
    for name in ("runs-cluster-drain", "runs-cluster-undrain"):
        assert client.post(reverse(name), {"worker": big_worker}).status_code == 403
    assert not redis_client().hexists(protocol.WORKERS_DRAINING, big_worker)
    assert recorded == []


def test_anonymous_users_are_sent_to_login(client, db):
    for name in ("runs-cluster-stop-all", "runs-cluster-drain", "runs-cluster-undrain"):
        response = client.post(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_stop_everything_needs_the_csrf_token(admin, queued):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin)
    assert browser.post(reverse("runs-cluster-stop-all")).status_code == 403
    queued.refresh_from_db()
    assert queued.status == Run.Status.QUEUED


def test_draining_is_post_only_and_for_known_workers(client, admin, big_worker):
    client.force_login(admin)
    assert client.get(reverse("runs-cluster-drain")).status_code == 405
    assert client.post(reverse("runs-cluster-drain"), {"worker": "loadgen@nowhere"}).status_code == 404
    assert not redis_client().hexists(protocol.WORKERS_DRAINING, "loadgen@nowhere")


def test_stop_everything_asks_first_then_cancels_and_records_who(client, admin, queued, recorded):
    client.force_login(admin)
    confirm = " ".join(client.get(reverse("runs-cluster-stop-all")).content.decode().split())
    assert '<strong id="stop-all-cancelling">1</strong> queued or starting run is cancelled' in confirm
    assert "<td>Shop</td><td>1</td>" in confirm
    queued.refresh_from_db()
    assert queued.status == Run.Status.QUEUED  # the GET changed nothing
    assert recorded == []

    client.post(reverse("runs-cluster-stop-all"))
    queued.refresh_from_db()
    assert queued.status == Run.Status.CANCELLED and queued.reason == "Cancelled by root"
    assert recorded == [("cluster.stop_all", {"actor": admin, "subject": "every active run", "details": {
        "stopped_runs": [], "cancelled_runs": [f"#{queued.pk}"], "projects": [queued.project.slug]}})]


def test_the_admin_controls_show_to_staff_only(client, admin, alice, big_worker):
    assert "Stop everything" not in page(client, alice)
    assert "Drain</button>" not in page(client, alice)
    staff = page(client, admin)
    assert 'id="stop-all"' in staff
    assert f'<input type="hidden" name="worker" value="{big_worker}"><button type="submit" ' \
           'class="secondary outline small-button">Drain</button>' in staff


def test_a_draining_worker_counts_only_its_busy_slots_and_shows_drained_once_empty(
        client, admin, big_worker, recorded):
    assert registry.capacity() == 12
    client.force_login(admin)
    assert client.post(reverse("runs-cluster-drain"), {"worker": big_worker}).status_code == 302
    assert recorded == [("cluster.worker_drained", {"actor": admin, "subject": f"load worker {big_worker}",
                                                    "details": {"worker": big_worker}})]
    assert registry.capacity() == 2  # held by its current runs, which admission counts as in use
    shown = page(client, admin)
    assert ">draining</span>" in shown and "Undrain</button>" in shown
    assert "0 slots online, 2 busy, 12 more on draining workers." in shown

    register(big_worker, busy=0)
    assert registry.capacity() == 0
    assert ">drained</span>" in page(client, admin)

    assert client.post(reverse("runs-cluster-undrain"), {"worker": big_worker}).status_code == 302
    assert registry.capacity() == 12 and "draining" not in page(client, admin)
    assert recorded[-1][0] == "cluster.worker_undrained"


def test_it_shows_each_slot_and_names_a_busy_slots_run_only_to_its_project(
        client, alice, charlie, charlies_project, big_worker, queued):
    lease(big_worker, 101, queued.pk, 0)
    theirs = store_scenario(charlies_project, charlie, name="Secret launch")
    other = services.start_run(theirs, user=charlie, params={"host": "http://127.0.0.1:9", "slots": 1})
    lease(big_worker, 102, other.pk, 0)

    mine = page(client, alice)
    assert mine.count('<li class="slot free" title="free">free</li>') == 10
    assert (f'<li class="slot busy" title="busy: slot 0 of run #{queued.pk} Checkout (Shop)">'
            f'<a href="{queued.get_absolute_url()}">#{queued.pk}</a></li>') in mine
    assert '<li class="slot busy" title="busy with another project&#x27;s run">busy</li>' in mine
    assert "Secret launch" not in mine and other.get_absolute_url() not in mine
    assert "2 of 12 busy" in mine

    theirs_page = page(client, charlie)
    assert f'<a href="{other.get_absolute_url()}">#{other.pk}</a>' in theirs_page
    assert queued.get_absolute_url() not in theirs_page
