"""Redis hygiene: the registry is read without SCAN, it keeps its behaviours, and runs leave no keys behind.

In process, the collector is fed by fake slots that use the real slot's Redis side (workers.slot: the
claim, the busy lease, the claim's settling once the run is over; a late task is the real slot.run):
100 short runs leave the key count flat, and nothing on a hot path SCANs. With real processes (two
load workers and a collector), a few runs, after which every key of theirs expired, and nobody SCANned.
"""

import json
import signal
import threading
import time
import uuid

import pytest
import redis as redis_lib
from django.conf import settings as django_settings
from django.urls import reverse

from runs import cluster, health, services
from runs.collector import Collector
from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.conftest import event, ready_both, snapshot, spin, start, start_collector, start_worker, wait_for
from workers import protocol, registry, sandbox, slot
from workers.tasks import Heartbeat

pytestmark = pytest.mark.django_db(transaction=True)

AFTER_END = 2  # SWARMDECK_RUN_KEYS_AFTER_END in the 100 runs: a late task reads the stop well within it


class Monitor:
    """Every command this test's Redis database receives meanwhile, from every client (MONITOR)."""

    def __init__(self):
        self.redis = redis_lib.Redis.from_url(django_settings.REDIS_URL)  # no socket timeout: it waits for commands
        self.db = int(self.redis.connection_pool.connection_kwargs.get("db") or 0)
        self.marker = f"end-of-monitor-{uuid.uuid4().hex}"
        self.commands: list[str] = []
        self.failure: BaseException | None = None

    def __enter__(self):
        self.monitor = self.redis.monitor().__enter__()  # MONITOR is acknowledged before this returns
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def _read(self) -> None:
        try:
            while True:
                command = self.monitor.next_command()
                if self.marker in command["command"]:
                    return
                if command["db"] == self.db:
                    self.commands.append(command["command"])
        except BaseException as error:  # noqa: BLE001 - reported by __exit__
            self.failure = error

    def __exit__(self, *exc):
        self.redis.echo(self.marker)
        self.thread.join(10)
        self.monitor.__exit__()
        self.redis.close()
        assert self.failure is None and not self.thread.is_alive(), f"MONITOR stopped: {self.failure!r}"

    def named(self, *names: str) -> list[str]:
        return [c for c in self.commands if c.split(" ", 1)[0].upper() in names]


def run_keys(redis) -> list[str]:
    return sorted(key.decode() for key in redis.scan_iter(match="sd:run:*", count=1000))


def all_keys(redis) -> set[str]:
    return {key.decode() for key in redis.scan_iter(count=1000)}


# -- 100 short runs, in process ----------------------------------------------------------------
def fake_slots(redis, tasks, run, workers) -> list[slot.Slot]:
    """The run's slot tasks (as dispatched) on the fake workers, each claimed and holding its lease."""
    assignments = [args[0] for _, args, _ in tasks if args[0]["run"] == run.pk]
    slots = [slot.Slot(assignment, redis=redis, worker=worker) for assignment, worker in zip(assignments, workers)]
    for each in slots:
        assert slot.claim(redis, run.pk, each.index, f"{each.worker}:{each.pid}")
        each.refresh_lease(force=True)
    return slots


def finish_slots(redis, run, slots) -> None:
    """Each slot's end as the real one does it: final snapshot, done, lease released, claim settled."""
    for each in slots:
        final = snapshot(run, each.index, 1, 0, 3, kind="final", users=0)
        event(redis, run, each.index, protocol.EVENT_SNAPSHOT, final)
        event(redis, run, each.index, protocol.EVENT_DONE, {"exit_code": 0})
        each.release_lease()
        each.settle_claim()


def status(run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def short_run(number, redis, collector, tasks, workers, project, alice) -> str:
    """One run to its end: most finish after a stop, every tenth is cancelled while its slot tasks are
    on their way (they arrive late and find it over), every tenth fails when a slot cannot import."""
    run = start(project, alice, duration=60)
    spin(collector, lambda: status(run) == Run.Status.DISPATCHING)
    if number % 10 == 3:
        services.cancel_run(run, alice)
        for assignment, worker in zip([args[0] for _, args, _ in tasks if args[0]["run"] == run.pk], workers):
            assert slot.run(assignment, redis=redis, worker=worker) == "cancelled"
        return status(run)
    slots = fake_slots(redis, tasks, run, workers)
    if number % 10 == 7:
        event(redis, run, 0, protocol.EVENT_ERROR, {"stage": "import", "message": "No module named 'nope'"})
        spin(collector, lambda: status(run) == Run.Status.FAILED)
        for each in slots:
            each.release_lease()
            each.settle_claim()
        return status(run)
    ready_both(redis, run)
    spin(collector, lambda: status(run) == Run.Status.RUNNING)
    services.request_stop(run, alice)
    finish_slots(redis, run, slots)
    spin(collector, lambda: status(run) == Run.Status.FINISHED)
    return status(run)


def test_the_key_count_stays_flat_over_100_short_runs(redis, fake_workers, tasks, alice, project, settings):
    settings.SWARMDECK_RUN_KEYS_AFTER_END = AFTER_END
    collector = Collector("test-collector", block_ms=5)
    collector.setup()
    ended: list[str] = []

    def runs(count: int) -> None:
        for _ in range(count):
            ended.append(short_run(len(ended), redis, collector, tasks, fake_workers, project, alice))

    runs(10)
    wait_for(lambda: not run_keys(redis), AFTER_END + 5, f"keys of ended runs still there: {run_keys(redis)}")
    before = all_keys(redis)
    runs(90)
    wait_for(lambda: not run_keys(redis), AFTER_END + 5, f"keys of ended runs still there: {run_keys(redis)}")
    grown = sorted(all_keys(redis) - before)
    assert redis.dbsize() <= len(before) + 2, f"{redis.dbsize() - len(before)} more keys after 100 runs: {grown}"
    assert {s: ended.count(s) for s in set(ended)} == {Run.Status.FINISHED: 80, Run.Status.CANCELLED: 10,
                                                       Run.Status.FAILED: 10}


def test_an_ended_runs_keys_say_stop_and_expire_soon_while_a_live_runs_keep_their_bound(
        redis, fake_workers, tasks, collector, alice, project, settings):
    settings.SWARMDECK_RUN_KEYS_AFTER_END = 120
    run = start(project, alice, duration=60)
    spin(collector, lambda: status(run) == Run.Status.DISPATCHING)
    slots = fake_slots(redis, tasks, run, fake_workers)
    ready_both(redis, run)
    spin(collector, lambda: status(run) == Run.Status.RUNNING)
    keys = [protocol.control_key(run.pk), protocol.claim_key(run.pk, 0), protocol.claim_key(run.pk, 1)]
    assert all(protocol.RUN_KEY_TTL_SECONDS - 60 < redis.ttl(key) <= protocol.RUN_KEY_TTL_SECONDS for key in keys)
    assert [a["timeouts"]["keys_after_end"] for _, (a,), _ in tasks] == [120, 120]  # what slots shorten to

    services.request_stop(run, alice)
    finish_slots(redis, run, slots)
    spin(collector, lambda: status(run) == Run.Status.FINISHED)
    assert [0 < redis.ttl(key) <= 120 for key in keys] == [True, True, True]
    assert redis.hget(protocol.control_key(run.pk), "stop") == b"1"  # a late task reads that, then leaves


def test_a_slot_task_that_arrives_after_its_run_ended_leaves_a_short_claim(
        redis, fake_workers, tasks, collector, alice, project, settings):
    settings.SWARMDECK_RUN_KEYS_AFTER_END = 90
    run = start(project, alice, duration=60)
    spin(collector, lambda: status(run) == Run.Status.DISPATCHING)
    services.cancel_run(run, alice)
    late = tasks[0][1][0]
    assert slot.run(late, redis=redis, worker=fake_workers[0]) == "cancelled"
    assert 0 < redis.ttl(protocol.claim_key(run.pk, late["slot"])) <= 90
    redis.delete(protocol.control_key(run.pk))  # later still: the control hash expired
    assert slot.run(tasks[1][1][0], redis=redis, worker=fake_workers[1]) == "stale"
    assert 0 < redis.ttl(protocol.claim_key(run.pk, 1)) <= 90


# -- no SCAN on the hot paths ------------------------------------------------------------------
def test_no_hot_path_scans_the_keyspace(redis, fake_workers, tasks, collector, alice, project, client):
    """The heartbeat, a slot's lease, the registry as the web and the collector read it (capacity, the
    Cluster page, the fair queue's plan while a run is queued, every page's banner), a run's lifecycle."""
    name = "loadgen@monitored"
    heartbeat = Heartbeat(name, 2, redis=redis, isolation=sandbox.probe())
    client.force_login(alice)
    try:
        with Monitor() as monitor:
            heartbeat.beat()
            run = start(project, alice, duration=60)
            spin(collector, lambda: status(run) == Run.Status.DISPATCHING)
            slots = fake_slots(redis, tasks, run, fake_workers)
            heartbeat.beat()
            assert cluster.capacity() >= 2
            mine = [*fake_workers, name]
            assert {w.name: len(w.leases) for w in cluster.workers() if w.name in mine} == {
                fake_workers[0]: 1, fake_workers[1]: 1, name: 0}
            assert client.get(reverse("runs-cluster")).status_code == 200
            assert client.get(reverse("scenarios-project-list")).status_code == 200
            health.forget()
            health.problems()
            ready_both(redis, run)
            spin(collector, lambda: status(run) == Run.Status.RUNNING)
            for each in slots:
                each.refresh_lease(force=True)
                each.release_lease()
    finally:
        registry.forget(redis, name)
    assert monitor.named("SCAN", "KEYS") == []
    # What the hot paths do instead, seen by the same MONITOR (so it watched the right database):
    assert monitor.named("ZRANGEBYSCORE") and monitor.named("ZADD") and monitor.named("ZCOUNT")


# -- the registry keeps its behaviours ---------------------------------------------------------
def payload(name: str, slots: int = 2) -> str:
    return json.dumps({"name": name, "host": name.split("@")[1], "slots": slots, "busy": 0, "heartbeat": time.time(),
                       "isolated": True, "isolation": "bubblewrap (fake)"})


def test_a_worker_is_listed_offline_for_an_hour_then_pruned_by_the_next_heartbeat(redis):
    names = ["loadgen@gone-a-while", "loadgen@gone-long", "loadgen@here"]
    now = protocol.redis_now(redis)
    try:
        registry.beat(redis, names[0], payload(names[0]), now=now - 3000)
        registry.beat(redis, names[1], payload(names[1]), now=now - 3700)
        assert redis.hexists(protocol.WORKERS_SEEN, names[1])  # until the next heartbeat of anyone
        registry.beat(redis, names[2], payload(names[2]))
        listed = {w.name: w.online for w in cluster.workers() if w.name in names}
        assert listed == {names[0]: False, names[2]: True}
        assert not redis.hexists(protocol.WORKERS_SEEN, names[1])
        assert redis.zscore(protocol.WORKERS_UNTIL, names[1]) is None
    finally:
        for name in names:
            registry.forget(redis, name)


def test_a_stopped_worker_is_offline_at_once_and_still_listed(redis):
    heartbeat = Heartbeat("loadgen@stopping", 3, redis=redis, isolation=sandbox.probe())
    try:
        heartbeat.start()  # beats at once, then every HEARTBEAT_SECONDS
        wait_for(lambda: [w.online for w in cluster.workers() if w.name == heartbeat.name] == [True], 5,
                 "the heartbeat never registered the worker")
        heartbeat.stop()  # what worker_shutdown does
        assert [w.online for w in cluster.workers() if w.name == heartbeat.name] == [False]
    finally:
        registry.forget(redis, heartbeat.name)


def test_a_dead_slots_lease_lapses_after_the_busy_ttl_and_is_dropped(redis, monkeypatch):
    monkeypatch.setattr(protocol, "BUSY_TTL_SECONDS", 2)
    name = "loadgen@leases"
    try:
        registry.beat(redis, name, payload(name))
        registry.hold_lease(redis, name, 101, 7, 0)  # a slot that dies now: it never refreshes nor releases
        registry.hold_lease(redis, name, 102, 8, 1)
        assert [w.leases for w in cluster.workers() if w.name == name] == [(cluster.Lease(7, 0), cluster.Lease(8, 1))]
        time.sleep(1.0)
        registry.hold_lease(redis, name, 102, 8, 1)  # the live one refreshes: 2 s more
        time.sleep(1.3)  # the dead one lapsed 0.3 s ago, the live one has 0.7 s left
        assert [w.leases for w in cluster.workers() if w.name == name] == [(cluster.Lease(8, 1),)]
        assert registry.busy(redis, name) == 1
        registry.hold_lease(redis, name, 102, 8, 1)
        assert redis.zcard(protocol.busy_key(name)) == 1  # the lapsed lease is gone from Redis too
        assert 0 < redis.pttl(protocol.busy_key(name)) <= 2000  # and the key goes with the last lease
    finally:
        registry.forget(redis, name)


def test_the_registry_refills_from_the_next_heartbeats_after_redis_lost_it(redis):
    name = "loadgen@refill"
    heartbeat = Heartbeat(name, 1, redis=redis, isolation=sandbox.probe())
    try:
        heartbeat.beat()
        registry.hold_lease(redis, name, 201, 9, 0)
        redis.delete(protocol.WORKERS_SEEN, protocol.WORKERS_UNTIL, protocol.busy_key(name))  # Redis restarted empty
        assert cluster.workers() == []
        registry.hold_lease(redis, name, 201, 9, 0)  # the slot's next refresh
        heartbeat.beat()
        worker = next(w for w in cluster.workers() if w.name == name)
        assert worker.online and worker.busy == 1 and worker.leases == (cluster.Lease(9, 0),)
    finally:
        registry.forget(redis, name)


# -- with real processes -----------------------------------------------------------------------
@pytest.mark.slow
def test_real_runs_leave_no_key_behind_and_nobody_scans(redis, target, alice, project):
    """Two real load workers and a collector, whose ended runs' keys expire after 2 s: four one-slot runs,
    two at a time; then none of their keys is left, and no process SCANned the keyspace meanwhile."""
    collector = start_collector(SWARMDECK_RUN_KEYS_AFTER_END="2")
    workers = [start_worker("hygiene-a"), start_worker("hygiene-b")]
    try:
        wait_for(lambda: {w.host for w in cluster.workers() if w.online} >= {"hygiene-a", "hygiene-b"}, 30,
                 "the two workers never showed up in the registry")
        scenario = store_scenario(project, alice, name="Short")
        with Monitor() as monitor:
            started = [services.start_run(scenario, user=alice, params={
                "users": 1, "spawn_rate": 10, "duration": 1, "slots": 1, "host": target.url, "stop_timeout": 1})
                for _ in range(4)]
            ended = [services.wait_until_done(run, timeout=60) for run in started]
        assert [run.status for run in ended] == [Run.Status.FINISHED] * 4, [run.reason for run in ended]
        ids = {str(run.pk) for run in ended}
        wait_for(lambda: not [k for k in run_keys(redis) if k.split(":")[2] in ids], 2 + 5,
                 f"keys of the ended runs still there: {run_keys(redis)}")
        assert monitor.named("SCAN", "KEYS") == []
        # It watched the processes: both workers' heartbeats counting their busy slots, the collector's passes.
        counted = " ".join(monitor.named("ZCOUNT"))
        assert "sd:busy:loadgen@hygiene-a" in counted and "sd:busy:loadgen@hygiene-b" in counted
        assert any(c.startswith("ZADD sd:collectors") for c in monitor.named("ZADD"))
    finally:
        collector.kill(signal.SIGTERM)
        for worker in workers:
            worker.kill(signal.SIGTERM)
        for name in ("loadgen@hygiene-a", "loadgen@hygiene-b"):
            registry.forget(redis, name)
