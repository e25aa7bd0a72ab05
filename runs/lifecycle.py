"""The run lifecycle, driven by the leading collector a few times a second.

Admission (FIFO across projects, when the cluster has room), the start barrier (go once every
slot is ready, fail with what was missing after the start timeout), the deadline and the stop,
slots lost for their silence or rejoining after it, and the end of a run: failed, or finished
with its verdict.
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis as redis_lib
from django.db import transaction
from django.utils import timezone

from runs import live as live_updates
from runs import services, shards, thresholds
from runs.liverun import LiveRun, SlotState
from runs.models import Run, RunSlot
from runs.persistence import FAULTS, Persistence, account_lost_snapshots
from runs.windows import Tracker
from workers import protocol, registry

log = logging.getLogger("swarmdeck.collector")

GO_DELAY = 1.0            # users start this long after the barrier opens, so every slot sees go in time
FINISH_GRACE = 20.0       # after stop: stop timeout + this, then slots without a final are lost
DURATION_SLACK = 1.0      # a pool's own duration timer runs from the same go as started_at, within this


class Lifecycle:
    """Moves the collector's runs along; `live_run` loads a run's live state (None once it ended)."""

    def __init__(self, redis: redis_lib.Redis, consumer: str, live: dict[int, LiveRun],
                 live_run: Callable[[int], LiveRun | None], persistence: Persistence,
                 guard: Callable[[], None] = lambda: None, shard: int = 0):
        self.shard = shard   # runs/shards.py: the runs of this shard only; admission on shard 0's leader
        self.guard = guard  # runs.leader.Lease.check, before each run's step
        self.behind = False  # the collector's last read left entries unread: no slot can be judged silent or late
        self.redis = redis
        self.consumer = consumer
        self.live = live
        self.live_run = live_run
        self.persistence = persistence

    def advance(self) -> None:
        registry.collector_present(self.redis, self.consumer)
        if shards.admits(self.shard):
            admit()
        # Not the statistics: the persists write them, a few times a second they would travel for nothing.
        runs = Run.objects.filter(status__in=Run.HOLDING_SLOTS, collector_shard=self.shard).defer(
            "stats_blob", "totals", "errors", "exceptions")
        for run in runs.order_by("created_at"):
            self.guard()
            if run.status in (Run.Status.DISPATCHING, Run.Status.STARTING):
                self.barrier(run)
            elif run.status == Run.Status.RUNNING:
                self.watch_running(run)
            elif run.status == Run.Status.STOPPING:
                self.watch_stopping(run)
        active = set(Run.objects.filter(pk__in=list(self.live), status__in=Run.ACTIVE).values_list("pk", flat=True))
        for run_id in [r for r in self.live if r not in active]:
            self.live.pop(run_id, None)  # cancelled or finished elsewhere

    def barrier(self, run: Run) -> None:
        slots = list(run.slots.all())
        ready = [s for s in slots if s.status == RunSlot.Status.READY]
        if slots and len(ready) == len(slots):
            # The go time is in Redis's clock (every slot compares it with Redis's TIME), the
            # recorded start in this machine's: neither depends on the workers' clocks.
            go_at = protocol.redis_now(self.redis) + GO_DELAY
            started = datetime.fromtimestamp(time.time() + GO_DELAY, tz=UTC)
            run.record(Run.Status.RUNNING, f"all {len(slots)} slot(s) ready")
            if Run.objects.filter(pk=run.pk, status=run.status).update(
                    status=Run.Status.RUNNING, started_at=started, history=run.history):
                services.write_control(run.pk, {"go_at": repr(go_at)})
                run.slots.update(status=RunSlot.Status.RUNNING)
                live_updates.publish_meta(run.pk)
                live = self.live_run(run.pk)
                if live:
                    for state in live.slots.values():
                        state.last_seen = time.monotonic() + GO_DELAY
                log.info("Run %s running: go at %.3f on %s slot(s).", run.pk, go_at, len(slots))
            return
        if any(s.status == RunSlot.Status.PREPARING for s in slots):
            return  # installing requirements: its own limit (SWARMDECK_PIP_TIMEOUT), on the slot
        # The start timeout counts from dispatch, or from the last environment ready: install time is not import time.
        since = max([run.dispatched_at, *(s.prepared_at for s in slots if s.prepared_at)], default=None) \
            if run.dispatched_at else None
        waited = (timezone.now() - since).total_seconds() if since else 0
        if waited > services.START_TIMEOUT:
            missing = [s for s in slots if s.status != RunSlot.Status.READY]
            claimed = {s.index for s in missing if self.redis.exists(protocol.claim_key(run.pk, s.index))}
            parts = []
            unclaimed = [str(s.index) for s in missing if s.index not in claimed]
            if unclaimed:
                parts.append(f"slot(s) {', '.join(unclaimed)} were never picked up by a load worker "
                             "(are enough workers running? see Cluster)")
            if claimed:
                parts.append(f"slot(s) {', '.join(map(str, sorted(claimed)))} were claimed but not ready "
                             "(still importing the locustfile?)")
            self.fail(run, f"Not all slots were ready within {services.START_TIMEOUT:.0f} s: {'; '.join(parts)}.")

    def watch_running(self, run: Run) -> None:
        live = self.live_run(run.pk)
        if live is None:
            return
        self.mark_lost(run, live)
        if live.slots and all(s.done or s.final for s in live.slots.values()):
            # Every pool also stops itself at the duration: its final can come before this check saw
            # the deadline, and the run must still say why it ended (runs/markers.py marks it).
            if duration_reached(run, slack=DURATION_SLACK):
                services.request_stop(run, note="duration reached", audit_action=None)
            self.finish(run, live)  # else e.g. a LoadTestShape ended the test on every slot
            return
        if duration_reached(run):
            services.request_stop(run, note="duration reached", audit_action=None)

    def watch_stopping(self, run: Run) -> None:
        live = self.live_run(run.pk)
        if live is None:
            return
        self.mark_lost(run, live)
        slots = RunSlot.objects.filter(run=run)
        settled = all(live.slots.get(s.index, SlotState()).final
                      or s.status in (RunSlot.Status.LOST, RunSlot.Status.FAILED)
                      for s in slots)
        limit = float(run.params.get("stop_timeout", services.DEFAULT_STOP_TIMEOUT)) + FINISH_GRACE
        # A collector that is behind has not read what the slots sent since: their finals may be in the stream.
        overdue = (not self.behind and run.stopping_at
                   and (timezone.now() - run.stopping_at).total_seconds() > limit)
        if settled or overdue:
            if overdue and not settled:
                late = [s.index for s in slots if not live.slots.get(s.index, SlotState()).final
                        and s.status not in (RunSlot.Status.LOST, RunSlot.Status.FAILED)]
                RunSlot.objects.filter(run=run, index__in=late).update(status=RunSlot.Status.LOST,
                                                                      error="No final snapshot after stop.")
                degrade(run, f"Slot(s) {', '.join(map(str, late))} sent no final snapshot after stop.")
            self.finish(run, live)

    def mark_lost(self, run: Run, live: LiveRun) -> None:
        """Slots silent for LOST_AFTER_SECONDS are lost; a run whose every slot is lost (or failed) fails.

        From what the collector holds in memory: the database is read only for the slots that went
        silent (or, while the collector has not heard of every slot, for all of them), and asked
        whether any slot is left only once every slot is done (this runs a few times a second per run).
        While the collector is behind (`behind`), no slot is silent: what it sent waits in the stream,
        and a collector that fell behind must not lose every slot, then rejoin each one."""
        now = time.monotonic()
        silent = [] if self.behind else [
            index for index, state in live.slots.items()
            if not state.final and not state.done and now - state.last_seen > protocol.LOST_AFTER_SECONDS]
        known = len(live.slots) >= run.slots_requested
        if (silent or not known) and not self.behind:
            running = RunSlot.objects.filter(run=run, status=RunSlot.Status.RUNNING).only("pk", "index", "host")
            self.lose_silent(run, live, running if not known else running.filter(index__in=silent), now)
        if known and not all(state.done for state in live.slots.values()):
            return
        if not RunSlot.objects.filter(run=run).exclude(
                status__in=[RunSlot.Status.LOST, RunSlot.Status.FAILED]).exists():
            self.persistence.persist_run(live, final=True)
            self.fail(run, "Every slot was lost: " + run.reason)

    def lose_silent(self, run: Run, live: LiveRun, slots, now: float) -> None:
        """Mark lost each of `slots` (running RunSlot rows) that is still silent, and the run degraded."""
        for slot in slots:
            state = live.slots.setdefault(slot.index, SlotState())
            if not state.final and not state.done and now - state.last_seen > protocol.LOST_AFTER_SECONDS:
                if RunSlot.objects.filter(pk=slot.pk, status=RunSlot.Status.RUNNING).update(
                        status=RunSlot.Status.LOST, error=f"Silent for more than {protocol.LOST_AFTER_SECONDS} s."):
                    state.done = True
                    state.lost = True
                    degrade(run, f"Slot {slot.index} on {slot.host or '?'} was lost "
                                 f"(silent for more than {protocol.LOST_AFTER_SECONDS} s).")

    def fail(self, run: Run, reason: str, detail: str = "") -> None:
        run.refresh_from_db(fields=["status", "history"])
        if run.status in Run.TERMINAL:
            return
        services.signal_stop(run.pk)
        live = self.live.get(run.pk)
        if live is not None:
            self.persistence.persist_run(live, final=True)  # keep what the slots sent before the failure
            account_lost_snapshots(run.pk, live)
        run.refresh_from_db()
        # A run that failed after its users started is judged on what it measured; one that never started is not.
        verdict = verdict_fields(run, live.windows if live is not None else None) if run.started_at else {}
        full = f"{reason}\n\n{detail}".strip() if detail else reason
        # One transaction: a reader never sees the run failed with a slot of it still running.
        with transaction.atomic():
            failed = transition(run, run.status, Run.Status.FAILED, reason, reason=full, ended_at=timezone.now(),
                                **verdict)
            if failed:
                RunSlot.objects.filter(run=run, status__in=[RunSlot.Status.PENDING, RunSlot.Status.READY,
                                                            RunSlot.Status.RUNNING]).update(status=RunSlot.Status.FAILED)
        if failed:
            live_updates.publish_meta(run.pk)  # with the slots' final states
            log.warning("Run %s failed: %s", run.pk, reason)
            services.announce_end(run)
        self.live.pop(run.pk, None)

    def finish(self, run: Run, live: LiveRun) -> None:
        self.persistence.persist_run(live, final=True)
        account_lost_snapshots(run.pk, live)
        run.refresh_from_db()
        if run.status in Run.TERMINAL:  # e.g. failed a moment ago because every slot was lost
            self.live.pop(run.pk, None)
            return
        if run.total_requests == 0 and not any(w.get("kind") == "no_requests" for w in run.warnings):
            run.warnings = [*run.warnings, {
                "kind": "no_requests", "slot": None, "host": "", "at": timezone.now().isoformat(),
                "message": "The run sent no requests: check the host and the Exceptions tab."}]
            Run.objects.filter(pk=run.pk).update(warnings=run.warnings)
        note = "finished degraded" if run.degraded else "finished"
        verdict = verdict_fields(run, live.windows)
        if verdict["verdict"]:
            note += f", verdict {verdict['verdict']}"
        with transaction.atomic():   # the run and its slots finish together
            finished = transition(run, run.status, Run.Status.FINISHED, note, ended_at=timezone.now(), **verdict)
            if finished:
                RunSlot.objects.filter(run=run, status__in=[RunSlot.Status.RUNNING, RunSlot.Status.READY]).update(
                    status=RunSlot.Status.FINISHED)
        if finished:
            log.info("Run %s finished: %s requests, %s failures.", run.pk, run.total_requests, run.total_failures)
            services.announce_end(run)
            keep_first_paint(run.pk)
        self.live.pop(run.pk, None)


def keep_first_paint(run_id: int) -> None:
    """A long run's downsampled series, read once now that it ended (runs/tick_series.py): its page never reads
    every tick again. A failure here costs its first view that read, nothing else."""
    from runs import tick_series

    try:
        run = Run.objects.defer("stats_blob", "totals", "errors", "exceptions").get(pk=run_id)
        if run.stats_updated_at:
            tick_series.kept(run)
    except FAULTS:
        raise
    except Exception:  # noqa: BLE001 - the run has finished: its page reads the ticks instead
        log.exception("Run %s: its series could not be kept for its page.", run_id)


def duration_reached(run: Run, slack: float = 0.0) -> bool:
    """The run has a duration and it has passed (within `slack` seconds) since go."""
    if not run.duration or not run.started_at:
        return False
    return timezone.now() >= run.started_at + timedelta(seconds=run.duration - slack)


def admit() -> None:
    """Dispatch what the fair queue starts now (sharing.queue: its rule, backfill and reservations)."""
    from sharing import queue

    queue.admit()


def rejoin(live: LiveRun, slot: int, state: SlotState, gap: float) -> None:
    """A slot marked lost reports again: it counts as running, and the run says for how long it was gone."""
    state.lost, state.done = False, False
    RunSlot.objects.filter(run_id=live.run_id, index=slot, status=RunSlot.Status.LOST).update(
        status=RunSlot.Status.RUNNING, error=f"Rejoined after {gap:.0f} s of silence.")
    run = Run.objects.filter(pk=live.run_id).first()
    host = RunSlot.objects.filter(run_id=live.run_id, index=slot).values_list("host", flat=True).first() or "?"
    note = (f"Slot {slot} on {host} rejoined after {gap:.0f} s of silence: what it measured during the gap "
            "arrived late and is counted")
    warning = {"kind": "rejoined", "slot": slot, "host": host, "gap_s": round(gap, 1),
               "at": timezone.now().isoformat(), "message": note + "."}
    Run.objects.filter(pk=live.run_id).update(warnings=[*run.warnings, warning])
    degrade(run, note + ".")
    log.warning("Run %s: %s.", live.run_id, note)


# -- state changes -----------------------------------------------------------------------------
def transition(run: Run, from_status: str, to_status: str, note: str = "", **fields) -> bool:
    run.record(to_status, note)
    changed = bool(Run.objects.filter(pk=run.pk, status=from_status).update(status=to_status, history=run.history,
                                                                         **fields))
    if changed:
        live_updates.publish_meta(run.pk)
    return changed


def degrade(run: Run, note: str) -> None:
    run.refresh_from_db(fields=["reason", "history", "status"])
    reason = f"{run.reason}\n{note}".strip()
    run.record(run.status, note)
    Run.objects.filter(pk=run.pk).update(degraded=True, reason=reason, history=run.history)
    run.reason = reason
    live_updates.publish_meta(run.pk)


def verdict_fields(run: Run, windows: Tracker | None = None) -> dict:
    """verdict and verdict_details of a run that ended, for the update that ends it (`windows`: the
    collector's rolling windows of the run, for windowed criteria).

    A bug in the criteria must not leave the run stuck in stopping, nor pass it silently.
    """
    try:
        verdict, details = thresholds.evaluate_run(run, windows)
    except Exception as error:  # noqa: BLE001
        log.exception("Run %s: its pass/fail criteria could not be evaluated.", run.pk)
        verdict, details = Run.Verdict.FAIL, [{
            "id": None, "criterion": "Pass/fail criteria could not be evaluated", "metric": "", "scope": "total",
            "operator": "", "unit": "", "limit": None, "limit_text": "–", "measured": None,
            "measured_text": f"error: {error}", "passed": False, "applicable": True, "aborted": False,
            "detail": "See the collector's log."}]
    if verdict:
        log.info("Run %s: verdict %s (%s criteria).", run.pk, verdict, len(details))
    return {"verdict": verdict, "verdict_details": details}
