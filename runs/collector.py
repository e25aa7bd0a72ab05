"""The collector: reads the report stream, merges statistics, persists them and drives every run.

One loop (`Collector.process_one`) does three things:
1. read a batch of events from the Redis Stream through the consumer group and apply them;
2. persist each changed run (totals, closed one-second ticks, the mergeable state) and only
   then XACK its events, so a collector killed at any point re-reads what it had not saved
   and, merging idempotently by slot + sequence, ends with the same totals;
3. move runs along their lifecycle: admission, start barrier, deadline, lost slots, finish.
"""

import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis as redis_lib
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from runs import cluster, intake, services, thresholds
from runs import live as live_updates
from runs import signals as run_signals
from runs.models import Run, RunSlot, RunTick, Threshold
from runs.redis import client
from workers import protocol
from workers import stats as stats_module
from workers.stats import RunStats

log = logging.getLogger("swarmdeck.collector")

TICK_GRACE = 2            # seconds a tick stays open for late slots before it is written
GO_DELAY = 1.0            # users start this long after the barrier opens, so every slot sees go in time
FINISH_GRACE = 20.0       # after stop: stop timeout + this, then slots without a final are lost
LIFECYCLE_EVERY = 0.25
PERSIST_EVERY = 1.0       # at the latest; a run is persisted (and pushed) as soon as every slot reported a second
CPU_WARN_PERCENT = 90.0   # a pool above this for CPU_WARN_SECONDS may be what limits the results
CPU_WARN_SECONDS = 5
# An outage, not a bad entry: these stop the iteration (the loop retries), everything else is
# contained to the entry or the run it concerns.
FAULTS = (redis_lib.ConnectionError, redis_lib.TimeoutError, OperationalError, InterfaceError)


@dataclass
class SlotState:
    last_seen: float = field(default_factory=time.monotonic)
    users: int = 0
    cpu: float | None = None
    requests: int = 0
    last_seq: int = 0
    merged: int = 0       # snapshots merged: last_seq - merged of them never arrived
    final: bool = False
    done: bool = False
    elapsed: float = 0.0  # seconds since go on the pool's own clock, as of its latest snapshot
    tick: int = -1        # the latest second this slot reported
    hot_since: int | None = None  # first tick of the current stretch above CPU_WARN_PERCENT
    cpu_warned: bool = False
    lost: bool = False            # marked lost for its silence; its next snapshot makes it rejoin


@dataclass
class LiveRun:
    run_id: int
    stats: RunStats
    slots: dict[int, SlotState]
    token: str = ""
    slots_requested: int = 1
    rejections: intake.Rejections = field(default_factory=intake.Rejections)
    errors_capped: bool = False      # the run says that error rows were capped
    pending_acks: list = field(default_factory=list)
    dirty: bool = False
    last_persist: float = 0.0
    written_through: int = -1       # ticks up to this one are persisted and pushed
    newest_entry_ms: int = 0        # stream time of the newest snapshot merged since the last push
    newest_elapsed: float = 0.0     # its time since go on the pool's clock: go time + this = when the pool made it
    exceptions_seen: int = -1       # exception count last pushed: tracebacks travel only when they change

    def complete_tick(self) -> int:
        """The latest second every running slot has reported (its deltas arrive in order)."""
        reporting = [s.tick for s in self.slots.values() if not s.done and not s.final]
        return min(reporting) if reporting else -1


class Collector:
    def __init__(self, consumer: str | None = None, *, batch: int = 500, block_ms: int = 200):
        self.redis = client()
        self.consumer = consumer or f"collector-{socket.gethostname()}"
        self.batch = batch
        self.block_ms = block_ms
        self.live: dict[int, LiveRun] = {}
        self.last_lifecycle = 0.0
        self.recovering = True
        self.recovery_cursor = "0"   # pending entries are re-read in id order, each once
        self.ready = False
        self.malformed = 0

    def step_down(self) -> None:
        """Another collector leads: forget what is in memory (it lives in the database and the
        stream's pending entries, which the leader claims)."""
        self.live.clear()
        self.ready = False
        self.recovering = True
        self.recovery_cursor = "0"

    # -- stream ------------------------------------------------------------------------------
    def setup(self) -> None:
        try:
            self.redis.xgroup_create(protocol.REPORT_STREAM, protocol.COLLECTOR_GROUP, id="0", mkstream=True)
        except redis_lib.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        # Entries another collector (an earlier incarnation on another host) read but never acked.
        self.redis.xautoclaim(protocol.REPORT_STREAM, protocol.COLLECTOR_GROUP, self.consumer,
                              min_idle_time=0, start_id="0-0", count=100_000)
        # Redis may have restarted without its data: what slots poll is rebuilt from the database.
        for run in Run.objects.filter(status__in=Run.HOLDING_SLOTS):
            services.restore_control(run)
        self.ready = True

    def process_one(self) -> bool:
        """One iteration; True when it found events to apply."""
        # After a restart, first our own pending entries (read but never acked), then new ones.
        # The recovery read moves on past what it has seen: entries it could not ack yet (their
        # run waits for a persist) are not handed back again and again.
        start = self.recovery_cursor if self.recovering else ">"
        response = self.redis.xreadgroup(protocol.COLLECTOR_GROUP, self.consumer, {protocol.REPORT_STREAM: start},
                                         count=self.batch, block=None if self.recovering else self.block_ms)
        entries = response[0][1] if response else []
        if self.recovering and not entries:
            self.recovering = False
            log.info("Collector %s caught up with its pending entries.", self.consumer)
        for entry_id, fields in entries:
            self.handle(entry_id, fields)
        if self.recovering and entries:
            self.recovery_cursor = _text(entries[-1][0])
        self.persist(force=False)
        now = time.monotonic()
        if now - self.last_lifecycle >= LIFECYCLE_EVERY:
            self.last_lifecycle = now
            self.lifecycle()
        return bool(entries)

    def handle(self, entry_id, fields: dict) -> None:
        """Apply one entry. A bad entry is rejected and counted; an error of any other kind
        is contained to this entry and its run. Only outages (FAULTS) go up to the loop."""
        try:
            run_id, slot = intake.entry_ids(fields)
        except intake.Rejected:
            self.malformed += 1
            if self.malformed == 1 or self.malformed % 1000 == 0:
                log.warning("Dropped %s malformed stream entr(ies) naming no run (latest %s).", self.malformed,
                            _text(entry_id))
            self.ack([entry_id])
            return
        live = self.live_run(run_id)
        if live is None:  # unknown, finished or cancelled run: a late straggler
            self.ack([entry_id])
            return
        try:
            self.apply(live, slot, entry_id, fields)
        except intake.Rejected as rejected:
            self.reject(live, slot, entry_id, str(rejected))
        except FAULTS:
            raise
        except Exception as error:  # noqa: BLE001 - one entry must not stop every project's runs
            log.exception("Run %s: an entry of slot %s could not be applied.", run_id, slot)
            self.reject(live, slot, entry_id, f"it could not be applied ({type(error).__name__})")

    def apply(self, live: LiveRun, slot: int, entry_id, fields: dict) -> None:
        kind = intake.check_source(fields, slot, live.slots_requested, live.token)
        data = fields.get(b"data", b"")
        if kind == protocol.EVENT_SNAPSHOT:
            self.on_snapshot(live, slot, entry_id, intake.snapshot(data, live.run_id, slot))
            return
        payload = intake.control(data)
        if kind == protocol.EVENT_READY:
            self.on_ready(live, slot, payload)
        elif kind == protocol.EVENT_ERROR:
            self.on_error(live, slot, payload)
        elif kind == protocol.EVENT_DONE:
            live.slots.setdefault(slot, SlotState()).done = True
            RunSlot.objects.filter(run_id=live.run_id, index=slot, status__in=[
                RunSlot.Status.RUNNING, RunSlot.Status.READY, RunSlot.Status.PENDING]).update(
                status=RunSlot.Status.FINISHED)
        # Lifecycle events are applied straight to the database: acknowledge them now, unless
        # snapshots of the same run wait for their persist (keep the stream's order then).
        if live.pending_acks:
            live.pending_acks.append(entry_id)
        else:
            self.ack([entry_id])

    def reject(self, live: LiveRun, slot: int | None, entry_id, reason: str) -> None:
        """Acknowledge a bad entry and count it on its run; one log line per slot."""
        self.ack([entry_id])
        if live.rejections.add(slot, reason):
            log.warning("Run %s: rejected an event from slot %s: %s (further ones are counted on the run).",
                        live.run_id, slot, reason)

    def ack(self, ids) -> None:
        if ids:
            self.redis.xack(protocol.REPORT_STREAM, protocol.COLLECTOR_GROUP, *ids)

    def live_run(self, run_id: int) -> LiveRun | None:
        live = self.live.get(run_id)
        if live is not None:
            return live
        run = Run.objects.filter(pk=run_id).only("status", "stats_blob", "token", "params").first()
        if run is None or run.status in Run.TERMINAL:
            return None
        stats = RunStats.from_bytes(bytes(run.stats_blob)) if run.stats_blob else RunStats()
        slots = {s.index: SlotState(users=s.users, cpu=s.cpu, requests=s.requests, last_seq=s.last_seq,
                                    merged=s.snapshots, final=s.got_final, lost=s.status == RunSlot.Status.LOST,
                                    done=s.status == RunSlot.Status.LOST)
                 for s in RunSlot.objects.filter(run_id=run_id)}
        live = LiveRun(run_id=run_id, stats=stats, slots=slots, token=run.token, slots_requested=run.slots_requested)
        self.live[run_id] = live
        return live

    # -- events --------------------------------------------------------------------------------
    def on_snapshot(self, live: LiveRun, slot: int, entry_id, snapshot: dict) -> None:
        state = live.slots.setdefault(slot, SlotState())
        silent_for = time.monotonic() - state.last_seen
        state.last_seen = time.monotonic()
        if live.stats.apply(snapshot):
            if state.lost:
                self.rejoin(live, slot, state, silent_for)
            state.last_seq = snapshot["seq"]
            state.merged += 1
            state.users = snapshot["users"]
            if snapshot["kind"] == "delta":  # a final snapshot's CPU covers a fraction of a second: noise
                state.cpu = min(100.0, max(0.0, float(snapshot["cpu"])))
            state.requests += sum(int(e["count"]) for e in snapshot["endpoints"])
            state.final = state.final or snapshot["kind"] == "final"
            state.elapsed = max(state.elapsed, float(snapshot.get("elapsed") or 0.0))
            if snapshot["kind"] == "delta":
                state.tick = max(state.tick, int(snapshot["tick"]))
            live.dirty = True
            live.newest_entry_ms = max(live.newest_entry_ms, _entry_ms(entry_id))
            live.newest_elapsed = max(live.newest_elapsed, float(snapshot.get("elapsed") or 0.0))
            self.watch_cpu(live, slot, state, snapshot)
        live.pending_acks.append(entry_id)

    def rejoin(self, live: LiveRun, slot: int, state: SlotState, gap: float) -> None:
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
        self.degrade(run, note + ".")
        log.warning("Run %s: %s.", live.run_id, note)

    def watch_cpu(self, live: LiveRun, slot: int, state: SlotState, snapshot: dict) -> None:
        """Warn once per slot whose pool stayed above CPU_WARN_PERCENT for CPU_WARN_SECONDS of its own ticks."""
        if snapshot["kind"] != "delta":
            return
        tick = int(snapshot["tick"])
        if float(snapshot["cpu"]) < CPU_WARN_PERCENT:
            state.hot_since = None
            return
        if state.hot_since is None:
            state.hot_since = tick
        if state.cpu_warned or tick - state.hot_since + 1 <= CPU_WARN_SECONDS:
            return
        state.cpu_warned = True
        run = Run.objects.filter(pk=live.run_id).only("warnings").first()
        if run is None or any(w.get("kind") == "cpu" and w.get("slot") == slot for w in run.warnings):
            return
        host = RunSlot.objects.filter(run_id=live.run_id, index=slot).values_list("host", flat=True).first() or "?"
        warning = {"kind": "cpu", "slot": slot, "host": host, "at": timezone.now().isoformat(),
                   "message": f"Slot {slot} on {host} ran above {CPU_WARN_PERCENT:.0f}% CPU for more than "
                              f"{CPU_WARN_SECONDS} s: the results may be limited by the load generator, "
                              "not the target."}
        Run.objects.filter(pk=live.run_id).update(warnings=[*run.warnings, warning])
        log.warning("Run %s: %s", live.run_id, warning["message"])

    def on_ready(self, live: LiveRun, slot: int, payload: dict) -> None:
        live.slots.setdefault(slot, SlotState()).last_seen = time.monotonic()
        RunSlot.objects.filter(run_id=live.run_id, index=slot, status=RunSlot.Status.PENDING).update(
            status=RunSlot.Status.READY, worker=str(payload.get("worker", ""))[:200],
            host=str(payload.get("host", ""))[:200], pid=payload.get("pid"), last_seen=timezone.now())
        run = Run.objects.get(pk=live.run_id)
        if run.status == Run.Status.DISPATCHING:
            self.transition(run, Run.Status.DISPATCHING, Run.Status.STARTING, "first slot ready")
        log.info("Run %s: slot %s ready on %s.", live.run_id, slot, payload.get("host"))

    def on_error(self, live: LiveRun, slot: int, payload: dict) -> None:
        stage = payload.get("stage", "run")
        message = str(payload.get("message") or "unknown error")
        detail = str(payload.get("detail") or "")
        run = Run.objects.get(pk=live.run_id)
        host = RunSlot.objects.filter(run=run, index=slot).values_list("host", flat=True).first() or "?"
        log.warning("Run %s slot %s (%s) reported an error at %s: %s", run.pk, slot, host, stage, message)
        if stage == "limit":  # the sandbox killed the pool at one of its limits: say which, in words
            note = f"Slot {slot}: {message}"
            if run.status in (Run.Status.DISPATCHING, Run.Status.STARTING):
                RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.FAILED, error=message)
                self.fail(run, note, detail)
                return
            live.slots.setdefault(slot, SlotState()).done = True
            RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.FAILED, error=message)
            if not RunSlot.objects.filter(run=run).exclude(
                    status__in=[RunSlot.Status.LOST, RunSlot.Status.FAILED]).exists():
                self.fail(run, note, detail)  # nothing left running: the limit is the run's reason
                return
            self.degrade(run, note)
            return
        if stage == "users":  # every user of the slot failed in on_start: the locustfile cannot run
            RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.FAILED,
                                                               error=f"{message}\n{detail}".strip())
            self.fail(run, f"Slot {slot} on {host}: {message}", detail)
            return
        if stage in ("claim", "import", "start") or run.status in (Run.Status.DISPATCHING, Run.Status.STARTING):
            RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.FAILED,
                                                               error=f"{message}\n{detail}".strip())
            self.fail(run, f"Slot {slot} could not start: {message}", detail)
            return
        # The pool died mid-run: the run goes on degraded; what the slot sent so far is kept.
        state = live.slots.setdefault(slot, SlotState())
        state.done = True
        RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.LOST,
                                                           error=f"{message}\n{detail}".strip())
        self.degrade(run, f"Slot {slot} on {host} was lost: {message}")

    # -- persistence -------------------------------------------------------------------------
    def persist(self, force: bool) -> None:
        now = time.monotonic()
        for live in list(self.live.values()):
            if live.rejections.unsaved:
                self.save_rejections(live)
            if live.pending_acks and not live.dirty:  # duplicates only: nothing to persist first
                self.ack(live.pending_acks)
                live.pending_acks = []
            # Once per batch, not per snapshot: complete_tick() looks at every slot of the run.
            if live.dirty and (force or now - live.last_persist >= PERSIST_EVERY
                               or live.complete_tick() > live.written_through):
                try:
                    self.persist_run(live)
                except FAULTS:
                    raise
                except Exception as error:  # noqa: BLE001 - contained to this run
                    log.exception("Run %s: its statistics could not be stored.", live.run_id)
                    self.ack(live.pending_acks)
                    live.pending_acks, live.dirty = [], False
                    live.rejections.add(None, f"statistics that could not be stored ({type(error).__name__})")

    def warn_errors_capped(self, live: LiveRun) -> None:
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

    def save_rejections(self, live: LiveRun) -> None:
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

    def persist_run(self, live: LiveRun, final: bool = False) -> None:
        run = Run.objects.filter(pk=live.run_id).only("started_at", "status", "params", "scenario_id").first()
        if run is None:
            self.live.pop(live.run_id, None)
            return
        elapsed = (timezone.now() - run.started_at).total_seconds() if run.started_at else 0.0
        # A second is complete once every running slot reported it; one that went silent is
        # waited for TICK_GRACE seconds at most.
        up_to = None if final else max(int(elapsed) - TICK_GRACE, live.complete_tick())
        ticks = live.stats.close_ticks(up_to)
        # RPS over the time users ran, as the pools measured it (like Locust), not until this write.
        measured = max((s.elapsed for s in live.slots.values()), default=0.0)
        duration = max(measured if measured > 0 else elapsed, 1e-9)
        totals = live.stats.totals(duration)
        aggregate = totals[-1] if totals else {}
        with transaction.atomic():
            Run.objects.filter(pk=live.run_id).update(
                stats_blob=live.stats.to_bytes(), totals=totals, errors=live.stats.error_rows(),
                exceptions=live.stats.exception_rows(), endpoints_overflowed=live.stats.overflowed,
                total_requests=aggregate.get("requests", 0), total_failures=aggregate.get("failures", 0),
                rps=aggregate.get("rps"), p50_ms=aggregate.get("p50"), p95_ms=aggregate.get("p95"),
                p99_ms=aggregate.get("p99"), current_users=sum(s.users for s in live.slots.values() if not s.done),
                stats_updated_at=timezone.now(),
            )
            for index, state in live.slots.items():
                RunSlot.objects.filter(run_id=live.run_id, index=index).update(
                    users=state.users, cpu=state.cpu, requests=state.requests, last_seq=state.last_seq,
                    snapshots=state.merged, got_final=state.final,
                    last_seen=timezone.now() - timedelta(seconds=time.monotonic() - state.last_seen))
            RunTick.objects.bulk_create(
                [RunTick(run_id=live.run_id, tick=t["tick"], users=t["users"], rps=t["rps"],
                         fails_per_s=t["fails_per_s"], p50_ms=t["p50_ms"], p95_ms=t["p95_ms"], p99_ms=t["p99_ms"],
                         endpoints=t["endpoints"]) for t in ticks],
                ignore_conflicts=True,
            )
        if live.stats.errors_overflowed and not live.errors_capped:
            self.warn_errors_capped(live)
        self.ack(live.pending_acks)
        live.pending_acks = []
        live.dirty = False
        live.last_persist = time.monotonic()
        if ticks:
            live.written_through = max(live.written_through, max(t["tick"] for t in ticks))
        if not final:
            self.enforce_thresholds(run, totals, elapsed)
        self.push(live, totals, ticks)

    def enforce_thresholds(self, run: Run, totals: list[dict], elapsed: float) -> None:
        """Stop a running run as soon as an abort-on-fail criterion is broken past its grace period.

        The broken criteria are stored on the run at once (verdict fail), so the verdict at the
        end keeps the value that broke them; the stop goes through services like a user's.
        """
        if run.status != Run.Status.RUNNING or not run.started_at or elapsed <= 0:
            return
        criteria = list(Threshold.objects.filter(scenario_id=run.scenario_id, enabled=True, abort_on_fail=True))
        broken = thresholds.broken(criteria, totals, elapsed) if criteria else []
        if not broken:
            return
        note = "; ".join(thresholds.abort_reason(entry) for entry in broken)
        current = Run.objects.filter(pk=run.pk).values_list("reason", flat=True).first() or ""
        if not Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
                reason=f"{current}\n{note}".strip(), verdict=Run.Verdict.FAIL, verdict_details=broken):
            return
        log.warning("Run %s: %s.", run.pk, note)
        services.request_stop(run, note=note)
        for entry in broken:
            for receiver, result in run_signals.threshold_broken.send_robust(sender=Run, run_id=run.pk,
                                                                             criterion=entry):
                if isinstance(result, Exception):
                    log.error("Run %s: a threshold_broken receiver (%s) failed: %r", run.pk, receiver, result)

    def push(self, live: LiveRun, totals: list[dict], ticks: list[dict]) -> None:
        """One message per run per persist (about one per second) to the pages watching it."""
        run = Run.objects.filter(pk=live.run_id).defer("stats_blob", "totals", "errors", "exceptions").first()
        if run is None:
            return
        message = {
            "type": "delta", "meta": live_updates.meta(run), "totals": totals, "errors": live.stats.error_rows(),
            "slots": live_updates.slot_rows(live.run_id), "series": live_updates.series_of(ticks),
            "produced_at": _produced_at(run, live),
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

    # -- lifecycle ---------------------------------------------------------------------------
    def lifecycle(self) -> None:
        self.redis.set(protocol.collector_key(self.consumer), str(time.time()), ex=protocol.COLLECTOR_TTL_SECONDS)
        self.admit()
        for run in Run.objects.filter(status__in=Run.HOLDING_SLOTS).order_by("created_at"):
            if run.status in (Run.Status.DISPATCHING, Run.Status.STARTING):
                self.barrier(run)
            elif run.status == Run.Status.RUNNING:
                self.watch_running(run)
            elif run.status == Run.Status.STOPPING:
                self.watch_stopping(run)
        for run_id in [r for r in self.live if not Run.objects.filter(pk=r, status__in=Run.ACTIVE).exists()]:
            self.live.pop(run_id, None)  # cancelled or finished elsewhere

    def admit(self) -> None:
        queued = list(Run.objects.filter(status=Run.Status.QUEUED).order_by("created_at", "id"))
        if not queued:
            return
        capacity = cluster.capacity()
        in_use = sum(r.slots_requested for r in Run.objects.filter(status__in=Run.HOLDING_SLOTS).only("params"))
        for run in queued:  # FIFO across projects: the head waits until it fits
            if run.slots_requested > capacity:
                continue  # more than the whole cluster: it waits for machines, without blocking the runs behind it
            if run.slots_requested > capacity - in_use:
                return
            if services.dispatch(run):
                in_use += run.slots_requested

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
                self.redis.hset(protocol.control_key(run.pk), "go_at", repr(go_at))
                run.slots.update(status=RunSlot.Status.RUNNING)
                live_updates.publish_meta(run.pk)
                live = self.live_run(run.pk)
                if live:
                    for state in live.slots.values():
                        state.last_seen = time.monotonic() + GO_DELAY
                log.info("Run %s running: go at %.3f on %s slot(s).", run.pk, go_at, len(slots))
            return
        waited = (timezone.now() - run.dispatched_at).total_seconds() if run.dispatched_at else 0
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
            self.finish(run, live)  # e.g. a LoadTestShape ended the test on every slot
            return
        if run.duration and run.started_at and timezone.now() >= run.started_at + timedelta(seconds=run.duration):
            services.request_stop(run, note="duration reached")

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
        overdue = run.stopping_at and (timezone.now() - run.stopping_at).total_seconds() > limit
        if settled or overdue:
            if overdue and not settled:
                late = [s.index for s in slots if not live.slots.get(s.index, SlotState()).final
                        and s.status not in (RunSlot.Status.LOST, RunSlot.Status.FAILED)]
                RunSlot.objects.filter(run=run, index__in=late).update(status=RunSlot.Status.LOST,
                                                                      error="No final snapshot after stop.")
                self.degrade(run, f"Slot(s) {', '.join(map(str, late))} sent no final snapshot after stop.")
            self.finish(run, live)

    def mark_lost(self, run: Run, live: LiveRun) -> None:
        now = time.monotonic()
        for slot in RunSlot.objects.filter(run=run, status=RunSlot.Status.RUNNING):
            state = live.slots.setdefault(slot.index, SlotState())
            if not state.final and not state.done and now - state.last_seen > protocol.LOST_AFTER_SECONDS:
                if RunSlot.objects.filter(pk=slot.pk, status=RunSlot.Status.RUNNING).update(
                        status=RunSlot.Status.LOST, error=f"Silent for more than {protocol.LOST_AFTER_SECONDS} s."):
                    state.done = True
                    state.lost = True
                    self.degrade(run, f"Slot {slot.index} on {slot.host or '?'} was lost "
                                      f"(silent for more than {protocol.LOST_AFTER_SECONDS} s).")
        if not RunSlot.objects.filter(run=run).exclude(
                status__in=[RunSlot.Status.LOST, RunSlot.Status.FAILED]).exists():
            self.persist_run(live, final=True)
            self.fail(run, "Every slot was lost: " + run.reason)

    # -- state changes -------------------------------------------------------------------------
    def transition(self, run: Run, from_status: str, to_status: str, note: str = "", **fields) -> bool:
        run.record(to_status, note)
        changed = bool(Run.objects.filter(pk=run.pk, status=from_status).update(status=to_status, history=run.history,
                                                                             **fields))
        if changed:
            live_updates.publish_meta(run.pk)
        return changed

    def degrade(self, run: Run, note: str) -> None:
        run.refresh_from_db(fields=["reason", "history", "status"])
        reason = f"{run.reason}\n{note}".strip()
        run.record(run.status, note)
        Run.objects.filter(pk=run.pk).update(degraded=True, reason=reason, history=run.history)
        run.reason = reason
        live_updates.publish_meta(run.pk)

    def fail(self, run: Run, reason: str, detail: str = "") -> None:
        run.refresh_from_db(fields=["status", "history"])
        if run.status in Run.TERMINAL:
            return
        services.signal_stop(run.pk)
        live = self.live.get(run.pk)
        if live is not None:
            self.persist_run(live, final=True)  # keep what the slots sent before the failure
            self.account_lost_snapshots(run.pk, live)
        run.refresh_from_db()
        # A run that failed after its users started is judged on what it measured; one that never started is not.
        verdict = self.verdict_fields(run) if run.started_at else {}
        full = f"{reason}\n\n{detail}".strip() if detail else reason
        if self.transition(run, run.status, Run.Status.FAILED, reason, reason=full, ended_at=timezone.now(),
                           **verdict):
            RunSlot.objects.filter(run=run, status__in=[RunSlot.Status.PENDING, RunSlot.Status.READY,
                                                        RunSlot.Status.RUNNING]).update(status=RunSlot.Status.FAILED)
            live_updates.publish_meta(run.pk)  # with the slots' final states
            log.warning("Run %s failed: %s", run.pk, reason)
            run_signals.run_ended.send(sender=Run, run_id=run.pk)
        self.live.pop(run.pk, None)

    def verdict_fields(self, run: Run) -> dict:
        """verdict and verdict_details of a run that ended, for the update that ends it.

        A bug in the criteria must not leave the run stuck in stopping, nor pass it silently.
        """
        try:
            verdict, details = thresholds.evaluate_run(run)
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

    def account_lost_snapshots(self, run_id: int, live: LiveRun) -> None:
        """Say on the run what never reached the collector (an outage, a stream cap): per slot,
        the snapshots between the ones merged, by their sequence numbers."""
        lost = {index: state.last_seq - state.merged for index, state in live.slots.items()
                if state.last_seq > state.merged}
        if not lost:
            return
        run = Run.objects.filter(pk=run_id).only("warnings").first()
        kept = [w for w in run.warnings if w.get("kind") != "lost_data"]
        rows = [{"kind": "lost_data", "slot": index, "host": "", "count": count, "at": timezone.now().isoformat(),
                 "message": f"data truncated: {count} snapshot{'s' if count != 1 else ''} (about {count} s) of "
                            f"slot {index} never reached the collector"} for index, count in sorted(lost.items())]
        Run.objects.filter(pk=run_id).update(warnings=[*kept, *rows])
        for row in rows:
            log.warning("Run %s: %s.", run_id, row["message"])

    def finish(self, run: Run, live: LiveRun) -> None:
        self.persist_run(live, final=True)
        self.account_lost_snapshots(run.pk, live)
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
        verdict = self.verdict_fields(run)
        if verdict["verdict"]:
            note += f", verdict {verdict['verdict']}"
        if self.transition(run, run.status, Run.Status.FINISHED, note, ended_at=timezone.now(), **verdict):
            RunSlot.objects.filter(run=run, status__in=[RunSlot.Status.RUNNING, RunSlot.Status.READY]).update(
                status=RunSlot.Status.FINISHED)
            log.info("Run %s finished: %s requests, %s failures.", run.pk, run.total_requests, run.total_failures)
            run_signals.run_ended.send(sender=Run, run_id=run.pk)
        self.live.pop(run.pk, None)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_ms(entry_id) -> int:
    """A stream entry id is "<milliseconds>-<sequence>": the time the slot added it."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    try:
        return int(text.split("-", 1)[0])
    except ValueError:
        return 0


def _produced_at(run: Run, live: LiveRun) -> float | None:
    """When the newest snapshot in this push was made by its pool (epoch s): users start at the
    run's go time on every pool, and each snapshot says how long after go it was taken. Without
    a go time, the moment its slot put it on the stream."""
    if run.started_at and live.newest_elapsed:
        return run.started_at.timestamp() + live.newest_elapsed
    return live.newest_entry_ms / 1000 if live.newest_entry_ms else None
