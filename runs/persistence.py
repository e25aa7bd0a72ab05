"""Persistence: a live run's merged statistics into the database, then to the pages watching it.

Each persist writes the run's totals, its closed one-second ticks and the mergeable state in one
transaction and only then acknowledges the stream entries merged into them, so a collector killed
at any point re-reads what it had not saved. The seconds it closes also move the run's rolling
windows on (runs/windows.py), when a criterion has a window. After the write it stops a run whose
abort-on-fail criteria broke, and pushes one message to the run's Channels group.
"""

import logging
import time
from collections.abc import Callable
from datetime import timedelta

import redis as redis_lib
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from runs import live as live_updates
from runs import services, thresholds, windows
from runs import signals as run_signals
from runs.batch_update import update_rows
from runs.leader import LeadLost
from runs.liverun import LiveRun
from runs.models import Run, RunSlot, RunTick, Threshold
from workers import stats as stats_module

log = logging.getLogger("swarmdeck.collector")

TICK_GRACE = 2            # seconds a tick stays open for late slots before it is written
PERSIST_EVERY = 1.0       # at the latest; a run is persisted (and pushed) as soon as every slot reported a second
CRITERIA_EVERY = 2.0      # a scenario's criteria are read at most this often per collector: an edit applies within it
# An outage, not a bad entry: these stop the iteration (the loop retries), everything else is
# contained to the entry or the run it concerns.
FAULTS = (redis_lib.ConnectionError, redis_lib.TimeoutError, OperationalError, InterfaceError)


class Persistence:
    """Writes the collector's live runs; `ack` acknowledges stream entries once they are stored."""

    def __init__(self, live: dict[int, LiveRun], ack: Callable[[list], None],
                 guard: Callable[[], None] = lambda: None):
        self.live = live
        self.ack = ack
        self.guard = guard  # runs.leader.Lease.check: before each run's persist, and again before its commit
        self._criteria: dict[int, tuple[float, list[Threshold]]] = {}  # scenario -> (read at, enabled criteria)
        self.behind = False  # the collector's last read left entries unread (runs/collector.py)

    def persist(self, force: bool) -> None:
        now = time.monotonic()
        for live in list(self.live.values()):
            self.guard()
            if live.rejections.unsaved:
                save_rejections(live)
            if live.pending_acks and not live.dirty:  # duplicates only: nothing to persist first
                self.ack(live.pending_acks)
                live.pending_acks = []
            # Once per batch, not per snapshot: complete_tick() looks at every slot of the run.
            if live.dirty and (force or now - live.last_persist >= PERSIST_EVERY
                               or live.complete_tick() > live.written_through):
                try:
                    self.persist_run(live)
                except (*FAULTS, LeadLost):
                    raise
                except Exception as error:  # noqa: BLE001 - contained to this run
                    log.exception("Run %s: its statistics could not be stored.", live.run_id)
                    self.ack(live.pending_acks)
                    live.pending_acks, live.dirty = [], False
                    live.rejections.add(None, f"statistics that could not be stored ({type(error).__name__})")

    def persist_run(self, live: LiveRun, final: bool = False) -> None:
        self.guard()
        run = Run.objects.filter(pk=live.run_id).only("started_at", "status", "params", "scenario_id").first()
        if run is None:
            self.live.pop(live.run_id, None)
            return
        elapsed = (timezone.now() - run.started_at).total_seconds() if run.started_at else 0.0
        # A second is complete once every running slot reported it; one that went silent is
        # waited for TICK_GRACE seconds at most, unless the collector is behind: then what the slots
        # sent for it may still be in the stream, and only complete seconds are written.
        if final:
            up_to = None
        elif self.behind:
            up_to = live.complete_tick()
        else:
            up_to = max(int(elapsed) - TICK_GRACE, live.complete_tick())
        criteria = self.criteria(run.scenario_id)
        seconds = [] if track_windows(live, run.scenario_id, criteria) else None
        ticks = live.stats.close_ticks(up_to, cumulative=True, seconds=seconds)
        # RPS over the time users ran, as the pools measured it (like Locust), not until this write.
        measured = max((s.elapsed for s in live.slots.values()), default=0.0)
        duration = max(measured if measured > 0 else elapsed, 1e-9)
        if seconds is not None:
            live.windows.feed(seconds)
            live.windows.duration = measured if measured > 0 else None
        totals = live.stats.totals(duration)
        aggregate = totals[-1] if totals else {}
        with transaction.atomic():
            Run.objects.filter(pk=live.run_id).update(
                stats_blob=live.stats.to_bytes(), totals=totals, errors=live.stats.error_rows(),
                exceptions=live.stats.exception_rows(), endpoints_overflowed=live.stats.overflowed,
                total_requests=aggregate.get("requests", 0), total_failures=aggregate.get("failures", 0),
                rps=aggregate.get("rps"), p50_ms=aggregate.get("p50"), p95_ms=aggregate.get("p95"),
                p99_ms=aggregate.get("p99"), current_users=sum(s.users for s in live.slots.values() if not s.done),
                class_users=class_users(live),
                stats_updated_at=timezone.now(),
            )
            update_rows(RunSlot, SLOT_FIELDS, slot_values(live))  # one statement, however many slots
            RunTick.objects.bulk_create(
                [RunTick(run_id=live.run_id, tick=t["tick"], users=t["users"], rps=t["rps"],
                         fails_per_s=t["fails_per_s"], p50_ms=t["p50_ms"], p95_ms=t["p95_ms"], p99_ms=t["p99_ms"],
                         endpoints=t["endpoints"], cumulative=t["cumulative"]) for t in ticks],
                ignore_conflicts=True,
            )
            self.guard()  # a collector that lost its lead during the statements commits none of them
        if live.stats.errors_overflowed and not live.errors_capped:
            warn_errors_capped(live)
        self.ack(live.pending_acks)
        live.pending_acks = []
        live.dirty = False
        live.last_persist = time.monotonic()
        if ticks:
            live.written_through = max(live.written_through, max(t["tick"] for t in ticks))
        if not final:
            enforce_thresholds(run, totals, elapsed, live.windows, criteria)
        push(live, totals, ticks)


    def criteria(self, scenario_id: int) -> list[Threshold]:
        """The scenario's enabled criteria, read at most every CRITERIA_EVERY s (every persist of a run uses them)."""
        now = time.monotonic()
        cached = self._criteria.get(scenario_id)
        if cached is None or now - cached[0] >= CRITERIA_EVERY:
            self._criteria = {key: value for key, value in self._criteria.items() if now - value[0] < CRITERIA_EVERY}
            cached = self._criteria[scenario_id] = (now, list(Threshold.objects.filter(scenario_id=scenario_id,
                                                                                        enabled=True)))
        return cached[1]


SLOT_FIELDS = ["users", "cpu", "requests", "last_seq", "snapshots", "got_final", "last_seen"]


def slot_values(live: LiveRun) -> list[tuple]:
    """The run's slots as the collector knows them: (pk, *SLOT_FIELDS) per RunSlot row (their keys read once)."""
    unknown = [index for index in live.slots if index not in live.slot_pks]
    if unknown:
        live.slot_pks.update(RunSlot.objects.filter(run_id=live.run_id, index__in=unknown).values_list("index", "pk"))
    now, monotonic = timezone.now(), time.monotonic()
    return [(live.slot_pks[index], state.users, state.cpu, state.requests, state.last_seq, state.merged, state.final,
             now - timedelta(seconds=monotonic - state.last_seen))
            for index, state in live.slots.items() if index in live.slot_pks]


def class_users(live: LiveRun) -> dict[str, int]:
    """Users running per user class, summed over the slots still running (the Current ratio)."""
    total: dict[str, int] = {}
    for state in live.slots.values():
        if not state.done:
            for name, count in state.classes.items():
                total[name] = total.get(name, 0) + int(count)
    return total


def warn_errors_capped(live: LiveRun) -> None:
    live.errors_capped = True
    run = Run.objects.filter(pk=live.run_id).only("warnings").first()
    if run is None or any(w.get("kind") == "errors_capped" for w in run.warnings):
        return
    message = (f"data truncated: more than {stats_module.MAX_ERRORS:,} distinct error messages (or "
               f"{stats_module.MAX_EXCEPTIONS} exceptions); the rest are counted as "
               f"“{stats_module.OTHER_ERRORS}” of their endpoint")
    Run.objects.filter(pk=live.run_id).update(warnings=[*run.warnings, {
        "kind": "errors_capped", "slot": None, "host": "", "at": timezone.now().isoformat(), "message": message}])
    log.warning("Run %s: %s.", live.run_id, message)


def save_rejections(live: LiveRun) -> None:
    """The run's "N invalid events from slot S rejected" warnings, as counted so far."""
    live.rejections.unsaved = False
    run = Run.objects.filter(pk=live.run_id).only("warnings").first()
    if run is None:
        return
    kept = [w for w in run.warnings if w.get("kind") != "rejected"]
    at = timezone.now().isoformat()
    Run.objects.filter(pk=live.run_id).update(
        warnings=[*kept, *({**row, "at": at} for row in live.rejections.warnings())])
    live_updates.publish_meta(live.run_id)


def account_lost_snapshots(run_id: int, live: LiveRun) -> None:
    """Say on the run what never reached the collector (an outage, a stream cap): per slot,
    the snapshots between the ones merged, by their sequence numbers."""
    lost = {index: state.last_seq - state.merged for index, state in live.slots.items()
            if state.last_seq > state.merged}
    late = live.stats.late_snapshots
    if not lost and not late:
        return
    run = Run.objects.filter(pk=run_id).only("warnings").first()
    kept = [w for w in run.warnings if w.get("kind") not in ("lost_data", "late_data")]
    now = timezone.now().isoformat()
    rows = [{"kind": "lost_data", "slot": index, "host": "", "count": count, "at": now,
             "message": f"data truncated: {count} snapshot{'s' if count != 1 else ''} (about {count} s) of "
                        f"slot {index} never reached the collector"} for index, count in sorted(lost.items())]
    if late:
        # Written seconds are not rewritten: a snapshot that arrives after its second was (an outage
        # of Redis or of the collector, a slot cut off) counts in the totals only.
        rows.append({"kind": "late_data", "slot": None, "host": "", "count": late, "at": now,
                     "message": f"data truncated: {late} snapshot{'s' if late != 1 else ''} arrived after their "
                                "second was written (a slot or the collector was cut off): they count in the "
                                "run's totals but are missing from its per-second charts and history CSV"})
    Run.objects.filter(pk=run_id).update(warnings=[*kept, *rows])
    for row in rows:
        log.warning("Run %s: %s.", run_id, row["message"])


def track_windows(live: LiveRun, scenario_id: int, criteria: list[Threshold] | None = None) -> bool:
    """Have the run's rolling windows follow its windowed criteria as they are now; True when there is one.
    `criteria`: the scenario's enabled ones, when the caller has them (else they are read)."""
    if criteria is None:
        criteria = list(Threshold.objects.filter(scenario_id=scenario_id, enabled=True))
    live.windows.configure([windows.spec_of(criterion) for criterion in criteria
                            if criterion.window_seconds > 0 and criterion.metric != Threshold.Metric.P95_BASELINE])
    return live.windows.active


def enforce_thresholds(run: Run, totals: list[dict], elapsed: float, tracker: windows.Tracker | None = None,
                       criteria: list[Threshold] | None = None) -> None:
    """Stop a running run as soon as an abort-on-fail criterion is broken past its grace period:
    on the totals, or on its newest full window (`tracker`) for a windowed one.

    The broken criteria are stored on the run at once (verdict fail), so the verdict at the
    end keeps the value that broke them; the stop goes through services like a user's. `criteria`: the
    scenario's enabled ones, when the caller has them (else they are read).
    """
    if run.status != Run.Status.RUNNING or not run.started_at or elapsed <= 0:
        return
    if criteria is None:
        criteria = list(Threshold.objects.filter(scenario_id=run.scenario_id, enabled=True))
    criteria = [criterion for criterion in criteria if criterion.abort_on_fail]
    broken = thresholds.broken(criteria, totals, elapsed) if criteria else []
    if criteria and tracker is not None and tracker.active:
        broken += thresholds.broken_windows(criteria, tracker, elapsed, run.started_at)
    if not broken:
        return
    note = "; ".join(thresholds.abort_reason(entry) for entry in broken)
    current = Run.objects.filter(pk=run.pk).values_list("reason", flat=True).first() or ""
    if not Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            reason=f"{current}\n{note}".strip(), verdict=Run.Verdict.FAIL, verdict_details=broken):
        return
    log.warning("Run %s: %s.", run.pk, note)
    services.request_stop(run, note=note, audit_action="run.aborted")
    for entry in broken:
        for receiver, result in run_signals.threshold_broken.send_robust(sender=Run, run_id=run.pk,
                                                                         criterion=entry):
            if isinstance(result, Exception):
                log.error("Run %s: a threshold_broken receiver (%s) failed: %r", run.pk, receiver, result)


def push(live: LiveRun, totals: list[dict], ticks: list[dict]) -> None:
    """One message per run per persist (about one per second) to the pages watching it: the rows that
    changed since the previous one (runs/changes.py), the Aggregated row, and the seconds it closed."""
    run = Run.objects.filter(pk=live.run_id).defer("stats_blob", "totals", "errors", "exceptions").first()
    if run is None:
        return
    message = {
        "type": "delta", "meta": live_updates.meta(run),
        **live.pushed.delta(totals, live.stats.error_rows(), live_updates.slot_rows(live.run_id)),
        "series": live_updates.series_of(ticks), "produced_at": _produced_at(run, live),
    }
    if ticks:
        message["current"] = ticks[-1]["endpoints"]
    exceptions = live.stats.exception_rows()
    seen = sum(row["count"] for row in exceptions)
    if seen != live.exceptions_seen:
        message["exceptions"] = exceptions
        live.exceptions_seen = seen
    live.newest_entry_ms = 0
    live.newest_elapsed = 0.0
    live_updates.publish(live.run_id, message)


def _produced_at(run: Run, live: LiveRun) -> float | None:
    """When the newest snapshot in this push was made by its pool (epoch s): users start at the
    run's go time on every pool, and each snapshot says how long after go it was taken. Without
    a go time, the moment its slot put it on the stream."""
    if run.started_at and live.newest_elapsed:
        return run.started_at.timestamp() + live.newest_elapsed
    return live.newest_entry_ms / 1000 if live.newest_entry_ms else None
