"""Hostile and broken entries on the report stream: rejected, counted on their run, never fatal,
and the runs beside them merge exactly. Also the recovery of a collector that died between its
commit and its XACK. The collector runs in-process against the real Redis stream and database."""

import msgpack
import numpy as np
import pytest

from runs.collector import Collector
from runs.models import Run
from tests.runs.conftest import event, ready_both, snapshot, spin, start
from workers import protocol, wire
from workers.stats import Recorder

pytestmark = pytest.mark.django_db(transaction=True)


def running(redis, collector, project, alice, **params):
    run = start(project, alice, duration=600, slots=1, **params)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    event(redis, run, 0, protocol.EVENT_READY, {"host": "fake-0", "pid": 100, "worker": "w"})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    return Run.objects.get(pk=run.pk)


def forged(of_run, slot=0, **fields) -> bytes:
    """A snapshot as a hostile pool would craft it: real encoding, impossible values."""
    recorder = Recorder()
    recorder.record("GET", "/forged", 1.0, 1, None)
    message = recorder.take_delta(run=of_run.pk, slot=slot, seq=1, tick=0, elapsed=1.0, users=1, cpu=1.0)
    message.update(fields)
    return wire.encode(message)


def raw_snapshot(run, **overrides) -> bytes:
    """The wire message with fields no encoder would write (e.g. users = 2**64 - 1)."""
    message = msgpack.unpackb(forged(run), raw=False)
    message.update(overrides)
    return msgpack.packb(message, use_bin_type=True)


def rejected_warnings(run) -> dict:
    run.refresh_from_db()
    return {w["slot"]: w for w in run.warnings if w["kind"] == "rejected"}


def test_it_rejects_forged_snapshots_counts_them_and_merges_the_rest_exactly(redis, fake_workers, tasks, collector,
                                                                            alice, project):
    victim = running(redis, collector, project, alice)
    bystander = running(redis, collector, project, alice)
    attacks = [
        forged(victim, tick=2**40),
        raw_snapshot(victim, users=2**64 - 1),
        forged(victim, seq=0),
        raw_snapshot(victim, cpu=float("nan")),
        forged(victim, slot=0, run=bystander.pk),          # another run's snapshot in this run's entry
        raw_snapshot(victim, scalars=np.array([[2**62, 0, 0, 0, 0, 0]], dtype="<i8").tobytes()),
        b"\x93not a snapshot",
    ]
    for data in attacks:
        event(redis, victim, 0, protocol.EVENT_SNAPSHOT, data)
    event(redis, victim, 0, protocol.EVENT_SNAPSHOT, snapshot(victim, 0, 1, 0, 10), token="stolen-or-guessed")
    event(redis, victim, 5, protocol.EVENT_SNAPSHOT, snapshot(victim, 5, 1, 0, 10))  # no such slot
    event(redis, victim, 0, "shutdown-everything", b"")
    redis.xadd(protocol.REPORT_STREAM, {"type": "snapshot", "data": b"no run, no slot"})
    # ... and honest snapshots of both runs around them.
    event(redis, victim, 0, protocol.EVENT_SNAPSHOT, snapshot(victim, 0, 1, 0, 7))
    event(redis, bystander, 0, protocol.EVENT_SNAPSHOT, snapshot(bystander, 0, 1, 0, 11))
    spin(collector, lambda: Run.objects.get(pk=bystander.pk).total_requests == 12
         and Run.objects.get(pk=victim.pk).total_requests == 8
         and sum(w["count"] for w in rejected_warnings(victim).values()) == len(attacks) + 3)
    for _ in range(5):
        collector.process_one()  # the collector is still going
    warnings = rejected_warnings(victim)
    assert warnings[0]["count"] == len(attacks) + 2
    assert warnings[0]["message"].startswith(f"{len(attacks) + 2} invalid events from slot 0 rejected (first: ")
    assert "'tick' is 1099511627776" in warnings[0]["message"]
    assert warnings[5]["message"] == ("1 invalid event from slot 5 rejected "
                                      "(first: slot 5 is not one of the run's 1 slot(s))")
    victim.refresh_from_db()
    assert victim.status == Run.Status.RUNNING and victim.total_requests == 8
    assert {row["name"] for row in victim.totals} == {"/ok", "/status/500", "Aggregated"}
    assert rejected_warnings(bystander) == {}
    assert redis.xpending(protocol.REPORT_STREAM, protocol.COLLECTOR_GROUP)["pending"] == 0


def test_it_rejects_control_events_with_a_wrong_token(redis, fake_workers, tasks, collector, alice, project):
    run = running(redis, collector, project, alice)
    event(redis, run, 0, protocol.EVENT_ERROR, {"stage": "users", "message": "forged failure"}, token="x" * 32)
    event(redis, run, 0, protocol.EVENT_DONE, {"exit_code": 0}, token="")
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 1, 0, 3))
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_requests == 4 and len(rejected_warnings(run)) == 1)
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING  # neither the forged failure nor the forged end took effect
    assert rejected_warnings(run)[0]["message"] == "2 invalid events from slot 0 rejected (first: wrong fencing token)"


def test_it_recovers_after_dying_between_commit_and_ack(redis, fake_workers, tasks, collector, alice, project):
    run = start(project, alice, duration=600)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    # The collector commits its totals, then dies before its XACK: its entries stay pending.
    collector.persistence.ack = lambda ids: None
    for seq in (1, 2, 3):
        event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, seq, seq - 1, 10))
        event(redis, run, 1, protocol.EVENT_SNAPSHOT, snapshot(run, 1, seq, seq - 1, 20))
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_requests == 3 * 32)
    assert redis.xpending(protocol.REPORT_STREAM, protocol.COLLECTOR_GROUP)["pending"] >= 6
    # Restarted, it re-reads them (all duplicates now), moves past them and takes new entries.
    restarted = Collector("test-collector", block_ms=50)
    restarted.setup()
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 4, 3, 5))
    event(redis, run, 1, protocol.EVENT_SNAPSHOT, snapshot(run, 1, 4, 3, 5))
    spin(restarted, lambda: not restarted.recovering and Run.objects.get(pk=run.pk).total_requests == 3 * 32 + 12,
         timeout=10)
    for _ in range(5):
        restarted.process_one()
    run.refresh_from_db()
    assert run.total_requests == 3 * 32 + 12 and run.total_failures == 8
    assert redis.xpending(protocol.REPORT_STREAM, protocol.COLLECTOR_GROUP)["pending"] == 0


def test_it_caps_distinct_error_messages_and_says_so(redis, fake_workers, tasks, collector, alice, project):
    from workers.stats import MAX_ERRORS, OTHER_ERRORS

    run = running(redis, collector, project, alice)
    recorder = Recorder()
    for i in range(MAX_ERRORS + 500):  # e.g. an id in every message
        recorder.record("GET", "/items", 1.0, 0, f"HTTPError('404 for /items/{i}')")
    data = wire.encode(recorder.take_delta(run=run.pk, slot=0, seq=1, tick=0, elapsed=1.0, users=1, cpu=1.0))
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, data)
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_failures == MAX_ERRORS + 500)
    run.refresh_from_db()
    assert len(run.errors) == MAX_ERRORS + 1
    other = next(row for row in run.errors if row["error"] == OTHER_ERRORS)
    assert other["count"] == 500 and other["name"] == "/items"
    assert sum(row["count"] for row in run.errors) == MAX_ERRORS + 500
    capped = [w for w in run.warnings if w["kind"] == "errors_capped"]
    assert capped and capped[0]["message"].startswith("data truncated: more than 1,000 distinct error messages")
