"""A persist writes a run with the same number of statements whatever its number of slots (issue 13: the
collector's database work per run per second is O(1)), and what it writes is each slot's own state; so
does a whole pass of the collector (read, merge, persist, push, lifecycle)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs import services
from runs.batch_update import update_rows
from runs.liverun import LiveRun, SlotState
from runs.models import Run, RunSlot
from runs.persistence import SLOT_FIELDS, Persistence
from tests.conftest import store_scenario
from tests.runs.conftest import event, snapshot
from workers import protocol
from workers.stats import Recorder, RunStats


def _running(project, user, slots: int) -> Run:
    scenario = store_scenario(project, user, name=f"{slots} slots")
    run = services.start_run(scenario, user=user, params={"host": "http://127.0.0.1:9", "slots": slots})
    assert services.dispatch(run)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, started_at=timezone.now())
    return run


def _live(run: Run, slots: int) -> LiveRun:
    stats, recorder = RunStats(), Recorder()
    live = LiveRun(run_id=run.pk, stats=stats, slots={}, slots_requested=slots)
    for index in range(slots):
        recorder.record("GET", "/ok", 5.0, 10, None)
        stats.apply(recorder.take_delta(run=run.pk, slot=index, seq=1, tick=0, elapsed=1.0, users=3, cpu=10.0))
        live.slots[index] = SlotState(users=3, cpu=10.0 + index, requests=index + 1, last_seq=1, merged=1, tick=0)
    live.dirty = True
    return live


def _statements_of_a_persist(persistence: Persistence, live: LiveRun) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        persistence.persist_run(live)
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.django_db
def test_a_persist_takes_as_many_statements_for_twenty_slots_as_for_two(project, alice, tasks):
    persistence = Persistence({}, ack=lambda entries: None)
    counts = {}
    for slots in (2, 20):
        run = _running(project, alice, slots)
        live = _live(run, slots)
        persistence.persist_run(live)  # the first persist also reads the slots' keys, once
        live.dirty = True
        counts[slots] = len(_statements_of_a_persist(persistence, live))
        rows = {slot.index: slot for slot in RunSlot.objects.filter(run=run)}
        assert [(rows[i].cpu, rows[i].requests, rows[i].users) for i in range(slots)] == [
            (10.0 + i, i + 1, 3) for i in range(slots)]
    assert counts[2] == counts[20], counts


def _statements_of_a_pass(collector, redis, run: Run, slots: int, seq: int) -> int:
    """One collector pass that reads one snapshot from each slot, merges, persists, pushes and runs the lifecycle."""
    for slot in range(slots):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, seq, seq - 1, 5))
    collector.last_lifecycle = 0  # the lifecycle runs in this pass too
    with CaptureQueriesContext(connection) as queries:
        assert collector.process_one()
    assert Run.objects.get(pk=run.pk).total_requests == slots * 6 * seq  # every snapshot was persisted
    return len(queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_a_whole_pass_takes_as_many_statements_for_twenty_slots_as_for_two(project, alice, tasks, collector, redis):
    """Read, merge, persist, push and the lifecycle: O(1) statements per run, whatever its number of slots."""
    collector.process_one()  # the recovery read: nothing pending
    counts = {}
    for slots in (2, 20):
        run = _running(project, alice, slots)
        RunSlot.objects.filter(run=run).update(status=RunSlot.Status.RUNNING)
        _statements_of_a_pass(collector, redis, run, slots, 1)  # the first pass also loads the run and its slots
        counts[slots] = [_statements_of_a_pass(collector, redis, run, slots, seq) for seq in (2, 3)]
        rows = RunSlot.objects.filter(run=run)
        assert {(row.snapshots, row.last_seq, row.requests) for row in rows} == {(3, 3, 18)}
        Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)  # out of the next run's lifecycle
        collector.last_lifecycle = 0
        collector.process_one()
    assert counts[2] == counts[20], counts


@pytest.mark.django_db
def test_one_statement_writes_each_rows_own_values_nulls_and_times_included(project, alice, tasks):
    run = _running(project, alice, 3)
    rows = list(RunSlot.objects.filter(run=run).order_by("index"))
    seen = timezone.now() - timedelta(seconds=5)
    values = [(row.pk, 7 + row.index, None if row.index == 1 else 12.5 + row.index, 10**12 + row.index, row.index,
               2 * row.index, row.index == 2, seen + timedelta(seconds=row.index)) for row in rows]
    with CaptureQueriesContext(connection) as queries:
        update_rows(RunSlot, SLOT_FIELDS, values)
    assert len(queries.captured_queries) == 1
    written = [(row.pk, row.users, row.cpu, row.requests, row.last_seq, row.snapshots, row.got_final, row.last_seen)
               for row in RunSlot.objects.filter(run=run).order_by("index")]
    assert written == values
