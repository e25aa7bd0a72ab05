"""Collector shards (runs/shards.py): each run owned by one collector, its slots writing to that shard's stream.

In-process collectors on real Redis and the real database for the rules; the real `manage.py collect`
processes, a real load worker and the nginx target for the whole path, a leader killed included."""

import logging
import signal

import pytest
from django.core.management import CommandError, call_command

from runs import health, leader, services, shards, stream
from runs.collector import Collector
from runs.models import Run
from runs.redis import client
from tests.conftest import store_scenario
from tests.runs.conftest import event, snapshot, start, start_collector, start_worker, wait_for
from workers import protocol
from workers import slot as slot_module

pytestmark = pytest.mark.django_db(transaction=True)


def test_report_stream_names_and_forged_ones():
    assert protocol.report_stream(0) == "sd:reports"
    assert protocol.report_stream(3) == "sd:reports:3"
    assert [protocol.shard_of_stream(protocol.report_stream(k)) for k in range(5)] == [0, 1, 2, 3, 4]
    for forged in ("sd:reports:0", "sd:reports:01", "sd:reports:-1", "sd:reports:x", "sd:reports:64", "sd:other",
                   "sd:reports:1:2", "sd:run:1:control", ""):
        assert protocol.shard_of_stream(forged) is None, forged


def test_a_slot_reports_to_its_assignments_stream_and_to_shard_0s_for_a_name_that_is_none(caplog):
    assert slot_module.report_stream({"stream": "sd:reports:2"}, 7) == "sd:reports:2"
    assert slot_module.report_stream({}, 7) == "sd:reports"  # an assignment of an unsharded control plane
    with caplog.at_level(logging.WARNING, logger="swarmdeck.slot"):
        assert slot_module.report_stream({"stream": "sd:workers:seen"}, 7) == "sd:reports"
    assert "Run 7: the assignment names 'sd:workers:seen', which is no report stream" in caplog.text


def _collectors():
    return [Collector("test-collector", block_ms=20, shard=k) for k in range(2)]


def _spin(collectors, until, timeout=10.0):
    wait_for(lambda: [c.process_one() for c in collectors] and until(), timeout, "condition not reached",
             interval=0)


def test_each_run_is_dispatched_to_a_shard_and_merged_by_that_shards_collector_only(
        settings, redis, fake_workers, tasks, alice, project):
    settings.SWARMDECK_COLLECTOR_SHARDS = 2
    collectors = _collectors()
    for collector in collectors:
        collector.setup()
    runs = [start(project, alice, slots=1, users=2) for _ in range(2)]
    for c in collectors:
        c.last_lifecycle = 0
    _spin(collectors, lambda: all(Run.objects.get(pk=r.pk).status == Run.Status.DISPATCHING for r in runs))
    runs = [Run.objects.get(pk=r.pk) for r in runs]
    assert sorted(r.collector_shard for r in runs) == [0, 1]
    assert {r.collector_shard for r in runs} == {r.pk % 2 for r in runs}
    streams = {args[0]["run"]: args[0]["stream"] for _, args, _ in tasks}
    assert streams == {r.pk: protocol.report_stream(r.collector_shard) for r in runs}

    for run in runs:
        event(redis, run, 0, protocol.EVENT_READY, {"host": "fake-0", "pid": 100, "worker": "w"})
    for run, requests in zip(runs, (10, 20), strict=True):
        event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 1, 0, requests))
    _spin(collectors, lambda: [Run.objects.get(pk=r.pk).total_requests for r in runs] == [11, 21])
    for run in runs:
        owner, other = collectors[run.collector_shard], collectors[1 - run.collector_shard]
        assert run.pk in owner.live and run.pk not in other.live
    assert redis.xlen(protocol.report_stream(0)) and redis.xlen(protocol.report_stream(1))


def test_an_entry_on_another_shards_stream_is_dropped_not_merged(settings, redis, fake_workers, tasks, alice, project,
                                                                  caplog):
    settings.SWARMDECK_COLLECTOR_SHARDS = 2
    collectors = _collectors()
    for collector in collectors:
        collector.setup()
    run = start(project, alice, slots=1, users=2)
    _spin(collectors, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    run.refresh_from_db()
    event(redis, run, 0, protocol.EVENT_READY, {"host": "fake-0", "pid": 100, "worker": "w"})
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 1, 0, 10))
    _spin(collectors, lambda: Run.objects.get(pk=run.pk).total_requests == 11)
    foreign = protocol.report_stream(1 - run.collector_shard)
    with caplog.at_level(logging.WARNING, logger="swarmdeck.collector"):
        event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 2, 1, 50), stream=foreign)
        wrong = collectors[1 - run.collector_shard]
        wait_for(lambda: wrong.process_one() or not redis.xpending(foreign, protocol.COLLECTOR_GROUP)["pending"]
                 and wrong.foreign, 5, "the foreign entry was never handled", interval=0)
        for _ in range(5):
            for collector in collectors:
                collector.process_one()
    assert Run.objects.get(pk=run.pk).total_requests == 11
    assert run.pk not in wrong.live
    assert (f"Run {run.pk} belongs to collector shard {run.collector_shard}: its entries on shard "
            f"{1 - run.collector_shard}'s stream are dropped.") in caplog.text


def test_only_shard_0s_leader_admits(settings, redis, fake_workers, tasks, alice, project):
    settings.SWARMDECK_COLLECTOR_SHARDS = 2
    second = Collector("test-collector", block_ms=20, shard=1)
    second.setup()
    run = start(project, alice, slots=1, users=2)
    for _ in range(5):
        second.last_lifecycle = 0
        second.process_one()
    assert Run.objects.get(pk=run.pk).status == Run.Status.QUEUED
    first = Collector("test-collector", block_ms=20, shard=0)
    first.setup()
    first.last_lifecycle = 0
    first.process_one()
    assert Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING


def test_the_backlog_alarm_counts_every_shards_stream(settings, redis):
    settings.SWARMDECK_COLLECTOR_SHARDS = 3
    redis.delete(*[protocol.report_stream(k) for k in range(3)])
    for k in range(3):
        redis.xgroup_create(protocol.report_stream(k), protocol.COLLECTOR_GROUP, id="0", mkstream=True)
        for i in range(k + 1):
            redis.xadd(protocol.report_stream(k), {"type": "x", "i": i})
    assert stream.backlog_of_all(redis).unread == 1 + 2 + 3
    assert stream.backlog(redis, protocol.report_stream(2)).unread == 3


def test_a_shard_without_a_leader_is_named_on_every_page(settings, redis):
    settings.SWARMDECK_COLLECTOR_SHARDS = 3
    health.forget()
    redis.delete(*[f"{leader.key(k)}:holder" for k in range(3)])
    redis.set(f"{leader.key(1)}:holder", "c1", ex=30)
    assert health.shards_without_leader() == [0, 2]
    redis.set(f"{leader.key(0)}:holder", "c0", ex=30)
    redis.set(f"{leader.key(2)}:holder", "c2", ex=30)
    assert health.shards_without_leader() == []
    settings.SWARMDECK_COLLECTOR_SHARDS = 1
    redis.delete(f"{leader.key(0)}:holder")
    assert health.shards_without_leader() == []  # one shard: "the collector is not running" says it


def test_collect_refuses_a_shard_beyond_the_setting(settings):
    settings.SWARMDECK_COLLECTOR_SHARDS = 2
    with pytest.raises(CommandError, match=r"--shard 2: SWARMDECK_COLLECTOR_SHARDS is 2, so the shards are 0 to 1"):
        call_command("collect", shard=2)


SCENARIO = b'''\
from locust import FastHttpUser, constant, task


class Steady(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def ok(self):
        self.client.get("/ok")
'''


@pytest.mark.slow
def test_two_shards_of_real_collectors_drive_their_runs_and_a_standby_takes_a_killed_leaders_shard(
        target, alice, project):
    """Three `manage.py collect` over 2 shards (one stands by), one worker with 2 slots, two runs: the leader
    of the second run's shard is killed mid-run; the standby takes that shard and its run ends with
    what nginx served."""
    env = {"SWARMDECK_COLLECTOR_SHARDS": "2", "SWARMDECK_LEADER_TTL": "1", "SWARMDECK_ALLOW_LOOPBACK_TARGETS": "1"}
    redis = client()
    redis.delete(*[f"{leader.key(k)}:holder" for k in range(2)])
    collectors = {}
    worker = start_worker("machine-s", concurrency=2)
    try:
        for name, shard in (("c0", 0), ("c1", 1)):
            collectors[name] = start_collector(name, **env)
            wait_for(lambda n=name, k=shard: f"Collector {n} leads{f' shard {k}' if k else ''}." in
                     collectors[n].output(), 30, f"collector {name} never led shard {shard}")
        standby = collectors["c2"] = start_collector("c2", **env)
        wait_for(lambda: "Collector c2 stands by: other collectors lead all 2 shards." in standby.output(), 30,
                 "the third collector never stood by")
        assert [redis.get(f"{leader.key(k)}:holder") for k in range(2)] == [b"c0", b"c1"]

        scenario = store_scenario(project, alice, name="Steady", content=SCENARIO)
        before = target.counts()
        runs = [services.start_run(scenario, user=alice, params={"users": 2, "spawn_rate": 10, "duration": 8,
                                                                  "slots": 1, "host": target.url})
                for _ in range(2)]
        wait_for(lambda: all(Run.objects.get(pk=r.pk).status == Run.Status.RUNNING for r in runs), 60,
                 "the runs never ran")
        runs = [Run.objects.get(pk=r.pk) for r in runs]
        assert sorted(r.collector_shard for r in runs) == [0, 1]
        shard = runs[1].collector_shard
        wait_for(lambda: Run.objects.get(pk=runs[1].pk).total_requests > 0, 20, "no request counted yet")
        collectors[f"c{shard}"].kill(signal.SIGKILL)
        wait_for(lambda: f"Collector c2 leads{f' shard {shard}' if shard else ''}." in standby.output(), 20,
                 "the standby never took the killed leader's shard")
        done = [services.wait_until_done(r, timeout=60) for r in runs]
        assert [r.status for r in done] == [Run.Status.FINISHED] * 2, [r.reason for r in done]
        served = target.counts().get(("GET", "/ok", 200), 0) - before.get(("GET", "/ok", 200), 0)
        counted = sum(r.total_requests for r in done)
        assert served > 0
        assert abs(counted - served) <= 4, (counted, served)  # at most the users' requests in flight at the end
    finally:
        for process in [*collectors.values(), worker]:
            process.kill(signal.SIGTERM)


def test_the_cluster_page_says_who_leads_each_shard_and_who_stands_by(settings, redis, client, alice, scenario):
    from django.urls import reverse

    from runs.models import Run
    from workers import registry

    running = Run.objects.create(project=scenario.project, scenario=scenario, version=scenario.current_version,
                                 status=Run.Status.RUNNING, created_by=alice, collector_shard=1,
                                 params={"users": 3, "spawn_rate": 1, "duration": 60, "slots": 3})

    settings.SWARMDECK_COLLECTOR_SHARDS = 2
    health.forget()
    redis.delete(*[f"{leader.key(k)}:holder" for k in range(2)], protocol.COLLECTORS)
    redis.set(f"{leader.key(0)}:holder", "collector-a", ex=30)
    for name in ("collector-a", "collector-b"):
        registry.collector_present(redis, name)
    client.force_login(alice)
    page = client.get(reverse("runs-cluster")).content.decode()
    table = page[page.index("data-collectors"):page.index("<h2>Running</h2>")]
    assert "<td>0</td><td><span class=\"mono small\">collector-a</span>" in table
    assert "<td>1</td><td><span class=\"badge fail\">no collector</span>" in table
    assert "Standing by: <span class=\"mono\">collector-b</span>" in table
    assert "No collector leads shard 1 of SWARMDECK_COLLECTOR_SHARDS" in page   # the banner on every page
    running_table = page[page.index("data-running"):page.index("<h2>Queue</h2>")]
    assert "<th title=\"The collector shard that merges and drives it\">Shard</th>" in running_table
    row = running_table[running_table.index(f"#{running.pk} "):]
    assert row[:row.index("</tr>")].endswith("<td>1</td>")
