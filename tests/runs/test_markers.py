"""Chart markers: what happened while a run went (users changed, stopped, aborted, a slot lost or
rejoined, a limit hit), placed at seconds since go, from Run.history and Run.warnings as the real
producers write them (services, lifecycle, persistence), so a changed note breaks this test."""

from datetime import timedelta

import pytest
from django.utils import timezone

from runs import services, thresholds
from runs.lifecycle import degrade, rejoin
from runs.liverun import LiveRun, SlotState
from runs.markers import chart_markers
from runs.models import Run, RunSlot
from runs.persistence import warn_errors_capped
from workers.stats import RunStats


def at(run, seconds):
    """Make the newest history entry happen `seconds` after go."""
    run.refresh_from_db()
    when = (run.started_at + timedelta(seconds=seconds)).isoformat()
    history = [*run.history[:-1], {**run.history[-1], "at": when}]
    Run.objects.filter(pk=run.pk).update(history=history)
    run.refresh_from_db()


@pytest.fixture
def running(scenario, alice):
    run = services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9", "users": 10, "slots": 2})
    started = timezone.now() - timedelta(seconds=120)
    run.record(Run.Status.RUNNING, "all 2 slot(s) ready")
    history = [{**entry, "at": (started - timedelta(seconds=1)).isoformat()} for entry in run.history]
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, started_at=started, history=history)
    for index in range(2):
        RunSlot.objects.create(run=run, index=index, status=RunSlot.Status.RUNNING, host=f"gen-{index}")
    run.refresh_from_db()
    return run


def test_it_marks_user_changes_lost_and_rejoined_slots_limits_and_the_stop(running, alice):
    run = running
    services.change_users(run, users=50, spawn_rate=5, user=alice)
    at(run, 10)
    degrade(run, "Slot 1 on gen-1 was lost (silent for more than 10 s).")   # lifecycle.mark_lost's note
    at(run, 20.5)
    RunSlot.objects.filter(run=run, index=1).update(status=RunSlot.Status.LOST)
    live = LiveRun(run_id=run.pk, stats=RunStats(), slots={1: SlotState(lost=True)})
    rejoin(live, 1, live.slots[1], gap=12.0)
    at(run, 32)
    degrade(run, "Slot 0: the locustfile used more than 512 MB of memory (killed)")  # collector.on_error, limit
    at(run, 40)
    warn_errors_capped(live)
    run.refresh_from_db()
    warnings = [{**w, "at": (run.started_at + timedelta(seconds=45)).isoformat()} for w in run.warnings]
    Run.objects.filter(pk=run.pk).update(warnings=warnings)
    run.refresh_from_db()
    services.request_stop(run, alice)
    at(run, 60)

    markers = chart_markers(run)
    assert [(m["t"], m["kind"], m["label"]) for m in markers] == [
        (10.0, "users", "Users → 50"),
        (20.5, "lost", "Slot 1 lost"),
        (32.0, "rejoined", "Slot 1 rejoined"),
        (40.0, "limit", "Slot 0: limit"),
        (45.0, "limit", "Errors capped"),
        (60.0, "stop", "Stopped by alice"),
    ]
    assert markers[0]["text"] == "users → 50 at 5/s by alice"
    assert "512 MB" in markers[3]["text"]
    assert markers[4]["text"].startswith("data truncated")
    # The live page gets them with every state change.
    from runs import live as live_updates
    assert live_updates.meta(run)["markers"] == markers


def test_it_marks_an_abort_and_the_duration_reached(running):
    run = running
    entry = {"metric": "failure_ratio", "scope": "total", "operator": "<=", "measured_text": "34.2%",
             "limit_text": "20%", "elapsed_s": 31}
    services.request_stop(run, note=thresholds.abort_reason(entry))     # persistence.enforce_thresholds' stop
    at(run, 31.4)
    [marker] = chart_markers(run)
    assert (marker["t"], marker["kind"], marker["label"]) == (31.4, "abort", "Aborted")
    assert marker["text"] == "Aborted: failure ratio 34.2% > 20% after 31 s"

    other = Run.objects.get(pk=run.pk)
    other.history = other.history[:-1]
    other.status = Run.Status.RUNNING
    other.save()
    services.request_stop(other, note="duration reached")
    at(other, 60)
    assert [(m["kind"], m["label"]) for m in chart_markers(other)] == [("stop", "Duration reached")]


def test_it_marks_cpu_warnings_and_nothing_before_go(running):
    run = running
    cpu = {"kind": "cpu", "slot": 1, "host": "gen-1", "at": (run.started_at + timedelta(seconds=7)).isoformat(),
           "message": "Slot 1 on gen-1 ran above 90% CPU for more than 5 s: the results may be limited ..."}
    lag = {"kind": "lag", "slot": 0, "host": "gen-0", "at": (run.started_at + timedelta(seconds=9)).isoformat(),
           "message": "Slot 0 on gen-0: its event loop ran 25 ms or more late in 3 seconds ..."}
    Run.objects.filter(pk=run.pk).update(warnings=[cpu, lag])
    run.refresh_from_db()
    assert [(m["t"], m["kind"], m["label"]) for m in chart_markers(run)] == [(7.0, "limit", "Slot 1 CPU > 90%"),
                                                                             (9.0, "limit", "Slot 0 lagging")]
    queued = Run(history=[{"status": "queued", "at": timezone.now().isoformat(), "note": "by alice"}])
    assert chart_markers(queued) == []
