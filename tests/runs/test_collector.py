"""The collector in-process, fed by fake slots that XADD real events to the real Redis Stream.

The engine end to end (real workers and pools) is in test_engine.py; here each lifecycle rule
is driven precisely: admission, barrier, deadline, duplicates, restarts, lost slots, failures.
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from runs import lifecycle, reports, services
from runs.collector import Collector
from runs.markers import chart_markers
from runs.models import Run, RunSlot, RunTick
from tests.runs.conftest import event, ready_both, snapshot, spin, start
from workers import protocol

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_admits_dispatches_and_opens_the_barrier_when_all_slots_are_ready(
        redis, fake_workers, tasks, collector, alice, project):
    run = start(project, alice, duration=60)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    assert [(name, args[0]["slot"], queue) for name, args, queue in tasks] == [
        ("workers.run_slot", 0, "loadgen"), ("workers.run_slot", 1, "loadgen")]
    run.refresh_from_db()
    assert redis.hget(protocol.control_key(run.pk), "token").decode() == run.token
    event(redis, run, 0, protocol.EVENT_READY, {"host": "fake-0", "pid": 100, "worker": "w"})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.STARTING)
    assert redis.hget(protocol.control_key(run.pk), "go_at") is None  # not before every slot is ready
    event(redis, run, 1, protocol.EVENT_READY, {"host": "fake-1", "pid": 101, "worker": "w"})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    go_at = float(redis.hget(protocol.control_key(run.pk), "go_at"))
    assert time.time() < go_at <= time.time() + lifecycle.GO_DELAY + 0.5
    assert set(RunSlot.objects.filter(run=run).values_list("host", flat=True)) == {"fake-0", "fake-1"}


def test_it_waits_fifo_when_the_cluster_is_full(redis, fake_workers, tasks, collector, alice, project):
    first = start(project, alice)
    second = start(project, alice, slots=1)
    spin(collector, lambda: Run.objects.get(pk=first.pk).status == Run.Status.DISPATCHING)
    for _ in range(5):
        collector.process_one()
        collector.last_lifecycle = 0
    assert Run.objects.get(pk=second.pk).status == Run.Status.QUEUED
    assert services.queue_position(Run.objects.get(pk=second.pk)) == 1


def test_it_merges_snapshots_once_and_survives_a_restart(redis, fake_workers, tasks, collector, alice, project):
    run = start(project, alice, duration=600)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 1, 0, 10))
    event(redis, run, 1, protocol.EVENT_SNAPSHOT, snapshot(run, 1, 1, 0, 20))
    event(redis, run, 1, protocol.EVENT_SNAPSHOT, snapshot(run, 1, 1, 0, 20))  # redelivered duplicate
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_requests == 32)
    # A new collector (the old one killed) resumes from the database and its pending entries.
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 2, 1, 5))
    restarted = Collector("test-collector", block_ms=50)
    restarted.setup()
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 2, 1, 5))  # and once more
    spin(restarted, lambda: Run.objects.get(pk=run.pk).total_requests == 38)
    for _ in range(5):
        restarted.process_one()
    run.refresh_from_db()
    assert run.total_requests == 38 and run.total_failures == 3
    ok = next(r for r in run.totals if r["name"] == "/ok")
    assert ok["requests"] == 35 and 5.0 <= ok["p50"] <= 7.1
    assert {e["error"] for e in run.errors} == {"HTTPError('500 Server Error')"}
    assert redis.xpending(protocol.REPORT_STREAM, protocol.COLLECTOR_GROUP)["pending"] == 0


def test_it_stops_at_the_deadline_and_finishes_with_every_final(redis, fake_workers, tasks, collector, alice, project):
    run = start(project, alice, duration=1)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.STOPPING, timeout=15)
    assert redis.hget(protocol.control_key(run.pk), "stop") == b"1"
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 1, 0, 4, kind="final", users=0))
        event(redis, run, slot, protocol.EVENT_DONE, {"exit_code": 0})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED)
    run.refresh_from_db()
    assert run.total_requests == 10 and not run.degraded
    assert [h["status"] for h in run.history] == ["queued", "dispatching", "starting", "running", "stopping",
                                                  "finished"]
    assert run.ticks.filter(tick=0).get().rps == 10


def test_slots_that_stop_themselves_at_the_duration_still_leave_the_duration_marker(
        redis, fake_workers, tasks, collector, alice, project):
    """Each pool stops its users at the duration on its own: when every final arrives before the
    collector's deadline check ran, the run still says it ended because its duration was reached."""
    run = start(project, alice, duration=60)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    run.refresh_from_db()
    Run.objects.filter(pk=run.pk).update(started_at=run.started_at - timedelta(seconds=61))
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 1, 0, 4, kind="final", users=0))
        event(redis, run, slot, protocol.EVENT_DONE, {"exit_code": 0})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED)
    run.refresh_from_db()
    assert [(h["status"], h["note"]) for h in run.history[-2:]] == [("stopping", "duration reached"),
                                                                   ("finished", "finished")]
    assert [(m["kind"], m["label"]) for m in chart_markers(run)] == [("stop", "Duration reached")]
    assert not run.stop_requested_by and not AuditEntry.objects.filter(action="run.stopped").exists()


def test_slots_that_end_well_before_the_duration_are_not_said_to_have_reached_it(
        redis, fake_workers, tasks, collector, alice, project):
    """E.g. a LoadTestShape that ended the test on every slot after 10 s of a 60 s run."""
    run = start(project, alice, duration=60)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 1, 0, 4, kind="final", users=0))
        event(redis, run, slot, protocol.EVENT_DONE, {"exit_code": 0})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED)
    run.refresh_from_db()
    assert [h["status"] for h in run.history[-2:]] == ["running", "finished"]
    assert chart_markers(run) == []


def test_it_fails_a_run_whose_slot_cannot_import(redis, fake_workers, tasks, collector, alice, project):
    run = start(project, alice)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    event(redis, run, 1, protocol.EVENT_ERROR, {"stage": "import", "message": "ZeroDivisionError: division by zero",
                                               "detail": "Traceback ...\n  File \"locustfile.py\", line 3"})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FAILED)
    run.refresh_from_db()
    assert run.reason.startswith("Slot 1 could not start: ZeroDivisionError: division by zero")
    assert redis.hget(protocol.control_key(run.pk), "stop") == b"1"  # the other slot exits too


def test_it_names_slots_that_were_never_ready(redis, fake_workers, tasks, collector, alice, project, monkeypatch):
    monkeypatch.setattr(services, "START_TIMEOUT", 1.0)
    run = start(project, alice)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    event(redis, run, 0, protocol.EVENT_READY, {"host": "fake-0", "pid": 100, "worker": "w"})
    redis.set(protocol.claim_key(run.pk, 0), "w:1")
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FAILED, timeout=15)
    run.refresh_from_db()
    assert "slot(s) 1 were never picked up by a load worker" in run.reason


def test_it_marks_a_silent_slot_lost_and_goes_on_degraded(redis, fake_workers, tasks, collector, alice, project,
                                                          monkeypatch):
    monkeypatch.setattr(protocol, "LOST_AFTER_SECONDS", 2)
    run = start(project, alice, duration=600)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    event(redis, run, 1, protocol.EVENT_SNAPSHOT, snapshot(run, 1, 1, 0, 7))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not Run.objects.get(pk=run.pk).degraded:
        event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, int(time.monotonic() * 10), 0, 1))
        collector.process_one()
        collector.last_lifecycle = 0
        time.sleep(0.2)
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING and run.degraded
    assert "Slot 1 on fake-1 was lost" in run.reason
    lost = RunSlot.objects.get(run=run, index=1)
    assert lost.status == RunSlot.Status.LOST and lost.requests == 8  # its data is kept


def test_it_cancels_a_dispatched_run_and_tells_the_slots(redis, fake_workers, tasks, collector, alice, project):
    run = start(project, alice)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    assert services.cancel_run(run, alice)
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED and run.ended_at <= timezone.now()
    assert redis.hget(protocol.control_key(run.pk), "stop") == b"1"


def test_it_keeps_each_seconds_cumulative_figures_for_the_history_csv(redis, fake_workers, tasks, collector, alice,
                                                                      project):
    run = start(project, alice, duration=2)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 1, 0, 4))
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.STOPPING, timeout=15)
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 2, 1, 6, kind="final", users=0))
        event(redis, run, slot, protocol.EVENT_DONE, {"exit_code": 0})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED)
    run.refresh_from_db()
    lines = reports.stats_history_csv(run).splitlines()
    rows = [line.split(",") for line in lines[1:]]
    # Per second: /ok, /status/500, Aggregated; Total Request Count (column 17) through that second.
    assert [(r[3], r[17]) for r in rows] == [("/ok", "8"), ("/status/500", "2"), ("Aggregated", "10"),
                                             ("/ok", "20"), ("/status/500", "4"), ("Aggregated", "24")]
    assert reports.NA not in lines[-1] and rows[-1][17] == str(run.total_requests)


def test_it_sums_the_users_each_slot_runs_per_class(redis, fake_workers, tasks, collector, alice, project):
    run = start(project, alice, duration=600)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    for slot, classes in ((0, {"Shopper": 3, "Admin": 1}), (1, {"Shopper": 4, "Admin": 0})):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 1, 0, 2, users=sum(classes.values()),
                                                                 classes=classes))
    spin(collector, lambda: Run.objects.get(pk=run.pk).class_users == {"Shopper": 7, "Admin": 1})
    from runs import live
    assert live.meta(Run.objects.get(pk=run.pk))["class_users"] == {"Shopper": 7, "Admin": 1}


def test_a_snapshot_that_arrives_after_its_second_was_written_is_counted_and_said(
        redis, fake_workers, tasks, collector, alice, project):
    run = start(project, alice, duration=1)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status in (Run.Status.RUNNING, Run.Status.STOPPING))
    for slot in (0, 1):  # second 0 complete on both slots: written
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 1, 0, 4))
    spin(collector, lambda: run.ticks.filter(tick=0).exists())
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 2, 0, 3))  # late for second 0
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.STOPPING, timeout=15)
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 3 - slot, 1, 1, kind="final", users=0))
        event(redis, run, slot, protocol.EVENT_DONE, {"exit_code": 0})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED)
    run.refresh_from_db()
    assert run.total_requests == 2 * (4 + 1) + (3 + 1) + 2 * (1 + 1)  # all in the totals (each snapshot adds a 500)
    assert run.ticks.get(tick=0).rps == 10  # the written second is not rewritten
    late = [w for w in run.warnings if w["kind"] == "late_data"]
    assert len(late) == 1 and late[0]["count"] == 1
    assert late[0]["message"].startswith("data truncated: 1 snapshot arrived after their second was written")


def test_a_collector_that_is_behind_judges_no_slot_silent_until_it_caught_up(redis, fake_workers, tasks, alice,
                                                                               project, monkeypatch):
    monkeypatch.setattr(protocol, "LOST_AFTER_SECONDS", 1)
    collector = Collector("test-collector", batch=2, block_ms=50)  # two entries a read: easily behind
    collector.setup()
    run = start(project, alice, duration=600)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    for seq in (1, 2, 3, 4, 5, 6):  # slot 1 is waiting in the stream behind slot 0's entries
        event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, seq, seq - 1, 1))
    event(redis, run, 1, protocol.EVENT_SNAPSHOT, snapshot(run, 1, 1, 0, 1))
    time.sleep(1.5)  # longer than LOST_AFTER_SECONDS since either slot was last read
    for _ in range(3):  # full reads: behind, so nobody is silent
        collector.last_lifecycle = 0
        collector.process_one()
        assert collector.lifecycle.behind
        assert not RunSlot.objects.filter(run=run, status=RunSlot.Status.LOST).exists()
    spin(collector, lambda: not collector.lifecycle.behind)
    assert collector.live[run.pk].slots[1].merged == 1 and not collector.live[run.pk].slots[1].lost
    time.sleep(1.5)  # now really silent, and the collector is caught up
    spin(collector, lambda: RunSlot.objects.filter(run=run, status=RunSlot.Status.LOST).count() == 2)


def test_a_collector_that_is_behind_waits_for_the_finals_past_the_stop_grace(redis, fake_workers, tasks, alice,
                                                                             project, monkeypatch):
    monkeypatch.setattr(lifecycle, "FINISH_GRACE", 0.5)
    collector = Collector("test-collector", batch=2, block_ms=50)
    collector.setup()
    run = start(project, alice, duration=600, stop_timeout=0.5)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    services.request_stop(Run.objects.get(pk=run.pk), note="test", audit_action=None)
    for seq in range(1, 9):  # the slots' last seconds, still to be read, then their finals
        for slot in (0, 1):
            event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, seq, seq - 1, 1))
    time.sleep(1.2)  # past stop_timeout + FINISH_GRACE before the collector read any of it
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 9, 8, 1, kind="final", users=0))
        event(redis, run, slot, protocol.EVENT_DONE, {"exit_code": 0})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status in Run.TERMINAL)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED and not run.degraded, run.reason
    assert run.total_requests == 2 * 9 * 2  # every second of both slots: 1 request and 1 failure each
    assert not RunSlot.objects.filter(run=run, status=RunSlot.Status.LOST).exists()


def test_a_collector_that_is_behind_writes_each_second_with_every_slot_in_it(redis, fake_workers, tasks, alice,
                                                                              project):
    collector = Collector("test-collector", batch=2, block_ms=50)
    collector.setup()
    run = start(project, alice, duration=600)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    # The users started a minute ago; the collector is reading the slots' first seconds only now.
    Run.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(seconds=60))
    for seq in range(1, 7):
        for slot in (0, 1):
            event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, seq, seq - 1, 3 + slot))
    spin(collector, lambda: RunTick.objects.filter(run=run).count() >= 5)
    assert collector.live[run.pk].stats.late_snapshots == 0
    for tick in RunTick.objects.filter(run=run, tick__lt=5):
        assert tick.rps == (3 + 1) + (4 + 1), tick.tick  # both slots' requests, each with its failure
