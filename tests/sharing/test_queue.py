"""The fair queue's rule (sharing.queue) on real database rows; the cluster's capacity is given.

End-to-end admission with real load workers is in test_fair_admission.py.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import Run
from sharing import queue
from sharing.models import Quota
from tests.conftest import store_scenario


@pytest.fixture
def shop(scenario):
    return scenario


@pytest.fixture
def other(charlies_project, charlie):
    return store_scenario(charlies_project, charlie, name="Search")


@pytest.fixture
def third(db, alice):
    from scenarios.services import create_project

    return store_scenario(create_project(alice, name="Blog", slug="blog"), alice, name="Read")


def make_run(scenario, *, slots=1, duration=60, status=Run.Status.QUEUED, age=0.0, started_ago=None,
             ended_ago=None) -> Run:
    now = timezone.now()
    run = Run.objects.create(project=scenario.project, scenario=scenario, version=scenario.current_version,
                             params={"slots": slots, "duration": duration, "users": slots, "spawn_rate": 1,
                                     "stop_timeout": 0}, status=status)
    fields = {"created_at": now - timedelta(seconds=age)}
    if started_ago is not None:
        fields.update(dispatched_at=now - timedelta(seconds=started_ago),
                      started_at=now - timedelta(seconds=started_ago))
    if ended_ago is not None:
        fields["ended_at"] = now - timedelta(seconds=ended_ago)
    Run.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    return run


def starts(capacity: int) -> list[int]:
    return [entry.run.pk for entry in queue.plan(capacity=capacity).entries if entry.start_now]


def order(capacity: int) -> list[int]:
    return [entry.run.pk for entry in queue.plan(capacity=capacity).entries]


def test_a_project_that_queued_five_runs_does_not_hold_back_another_projects_one(shop, other):
    """A queues 5, then B queues 1, on room for one run at a time: B's run is admitted second, not sixth."""
    a_runs = [make_run(shop, age=10 - i) for i in range(5)]
    b_run = make_run(other, age=4)
    assert starts(capacity=1) == [a_runs[0].pk]
    # A's first run holds the slot; when it has run, B's comes next, then A's others in their order.
    Run.objects.filter(pk=a_runs[0].pk).update(status=Run.Status.RUNNING, dispatched_at=timezone.now(),
                                               started_at=timezone.now())
    assert order(capacity=1) == [b_run.pk] + [r.pk for r in a_runs[1:]]
    Run.objects.filter(pk=a_runs[0].pk).update(status=Run.Status.FINISHED, ended_at=timezone.now())
    assert starts(capacity=1) == [b_run.pk]


def test_inside_a_project_runs_keep_their_order(shop):
    runs = [make_run(shop, age=5 - i) for i in range(3)]
    assert order(capacity=0) == [r.pk for r in runs]


def test_weight_scales_a_projects_share(shop, other):
    """shop used 2x the slot time of charlie's project lately, but has weight 3: it goes first."""
    make_run(shop, status=Run.Status.FINISHED, started_ago=1000, ended_ago=800)  # 200 slot-seconds
    make_run(other, status=Run.Status.FINISHED, started_ago=1000, ended_ago=900)  # 100
    shop_next, other_next = make_run(shop, age=1), make_run(other, age=2)
    assert order(capacity=0) == [other_next.pk, shop_next.pk]
    Quota.objects.create(project=shop.project, weight=3)
    assert order(capacity=0) == [shop_next.pk, other_next.pk]


def test_the_concurrent_cap_makes_a_run_wait_and_says_so(shop, other):
    Quota.objects.create(project=shop.project, max_concurrent_slots=2)
    make_run(shop, slots=2, status=Run.Status.RUNNING, started_ago=5)
    waiting, behind = make_run(shop, age=3), make_run(shop, age=2)
    others = make_run(other, age=1)
    plan = queue.plan(capacity=10)
    assert plan.of(waiting.pk).reason == "waiting: Shop uses 2 of its 2 slots"
    assert not plan.of(waiting.pk).start_now
    assert plan.of(behind.pk).reason == f"waiting behind run #{waiting.pk} of Shop"
    assert plan.of(others.pk).start_now  # another project is not held up by shop's cap


def test_a_run_larger_than_the_cluster_waits_for_machines_without_blocking(shop, other):
    big = make_run(shop, slots=5, age=3)
    small = make_run(other, age=1)
    plan = queue.plan(capacity=2)
    assert plan.of(big.pk).reason == "waiting for machines: it needs 5 slots and the cluster has 2 taking runs"
    assert [e.run.pk for e in plan.entries if e.start_now] == [small.pk]


def test_a_run_that_fits_is_not_starved_by_later_smaller_runs(shop, other, third, settings):
    """Two slots, one held by a 100 s run; a 2-slot run waits. Before the backfill time, 1-slot runs
    pass it; after it, it holds a reservation and a 1-slot run that would outlast the running one
    waits, while one that ends before the reservation still starts."""
    settings.SWARMDECK_BACKFILL_AFTER = 60
    running = make_run(third, slots=1, duration=100, status=Run.Status.RUNNING, started_ago=40)  # ends in ~60 s
    big = make_run(shop, slots=2, duration=60, age=30)
    long_small = make_run(other, slots=1, duration=600, age=20)
    assert starts(capacity=2) == [long_small.pk]  # backfill: big has waited 30 s of its 60
    Run.objects.filter(pk=big.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    plan = queue.plan(capacity=2)
    assert not plan.of(long_small.pk).start_now
    assert plan.of(long_small.pk).reason == f"waiting: run #{big.pk} holds a reservation for the slots it would take"
    assert "it holds a reservation" in plan.of(big.pk).reason
    expected = running.started_at + timedelta(seconds=100)
    assert abs((plan.of(big.pk).estimated_start - expected).total_seconds()) < 1
    short_small = make_run(other, slots=1, duration=5, age=10)  # ends long before the reservation
    assert starts(capacity=2) == [short_small.pk]
    Run.objects.filter(pk=running.pk).update(status=Run.Status.FINISHED, ended_at=timezone.now())
    assert starts(capacity=2) == [big.pk]


def test_the_estimated_start_follows_the_running_runs_deadlines(shop, other):
    running = make_run(other, slots=1, duration=120, status=Run.Status.RUNNING, started_ago=20)
    first, second = make_run(shop, duration=30, age=2), make_run(shop, duration=30, age=1)
    plan = queue.plan(capacity=1)
    assert [plan.of(first.pk).position, plan.of(second.pk).position] == [1, 2]
    assert abs((plan.of(first.pk).estimated_start - (running.started_at + timedelta(seconds=120))).total_seconds()) < 1
    assert plan.of(second.pk).estimated_start > plan.of(first.pk).estimated_start
    Run.objects.filter(pk=running.pk).update(params={**running.params, "duration": 0})  # until stopped
    assert queue.plan(capacity=1).of(first.pk).estimated_start is None
    assert queue.eta_words(queue.plan(capacity=1).of(first.pk)) == "when a run without a duration is stopped"


def test_the_cluster_page_lists_the_queue_in_its_order_and_hides_other_projects_details(client, alice, shop, other,
                                                                                        fake_workers):
    Quota.objects.create(project=shop.project, max_concurrent_slots=1)
    make_run(shop, status=Run.Status.RUNNING, started_ago=5)
    mine = make_run(shop, age=3)
    theirs = make_run(other, age=2)
    client.force_login(alice)
    page = client.get("/cluster/").content.decode()
    assert "waiting: Shop uses 1 of its 1 slot" in page
    assert f"#{mine.pk} Checkout" in page and f"#{theirs.pk} Search" not in page and "Search" not in page
    queue_table = page[page.index("data-queue"):]
    # charlie's project used no slot time lately: its run comes first (and starts now); shop's waits.
    assert queue_table.index("another project's run") < queue_table.index(f"#{mine.pk} Checkout")
    assert "starting now" in queue_table


def test_a_run_waiting_for_its_projects_cap_gets_an_estimate_from_the_projects_runs(shop):
    Quota.objects.create(project=shop.project, max_concurrent_slots=1)
    running = make_run(shop, duration=45, status=Run.Status.RUNNING, started_ago=5)
    waiting, behind = make_run(shop, age=2), make_run(shop, age=1)
    plan = queue.plan(capacity=4)
    expected = running.started_at + timedelta(seconds=45)
    assert abs((plan.of(waiting.pk).estimated_start - expected).total_seconds()) < 1
    assert queue.eta_words(plan.of(waiting.pk)) == "in less than a minute"
    assert queue.eta_words(plan.of(behind.pk)) == f"after run #{waiting.pk}"


def test_drained_slots_are_named_when_a_run_waits_for_machines(shop, redis, fake_workers):
    from runs import cluster
    from workers import protocol

    redis.hset(protocol.WORKERS_DRAINING, fake_workers[0], "{}")
    redis.hset(protocol.WORKERS_DRAINING, fake_workers[1], "{}")
    try:
        run = make_run(shop)
        assert cluster.capacity() == 0
        assert queue.plan().of(run.pk).reason == ("waiting for machines: it needs 1 slot and the cluster has 0 "
                                                  "taking runs (2 more drained by an admin)")
    finally:
        redis.delete(protocol.WORKERS_DRAINING)


def test_an_admin_sees_every_projects_queued_runs_on_the_cluster_page(client, shop, other, fake_workers):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_user("root", password="x", is_staff=True)
    make_run(other, slots=5, age=2)  # charlie's, larger than the cluster: it waits with its reason
    client.force_login(admin)
    page = client.get("/cluster/").content.decode()
    assert "Search" in page and "another project's run" not in page
    assert "waiting for machines: it needs 5 slots and the cluster has 2 taking runs" in page
