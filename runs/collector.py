"""The collector: reads the report stream, merges statistics, and has them persisted and the runs driven.

One loop (`Collector.process_one`) does three things:
1. read a batch of events from the Redis Stream through the consumer group, check them
   (runs/intake.py) and apply them to the live runs in memory (runs/liverun.py);
2. persist each changed run and only then XACK its events (runs/persistence.py), so a collector
   killed at any point re-reads what it had not saved and, merging idempotently by slot +
   sequence, ends with the same totals;
3. move runs along their lifecycle (runs/lifecycle.py): admission, start barrier, deadline, lost
   slots, finish.
A collector works on one shard's stream and runs (runs/shards.py; one shard unless
SWARMDECK_COLLECTOR_SHARDS says more). Only the shard's leader does any of it (runs/leader.py):
`guard` (the lease's check) runs before each step that writes, and raises runs.leader.LeadLost
once the collector cannot be sure it leads.
"""

import logging
import socket
import time
from collections.abc import Callable

import redis as redis_lib
from django.utils import timezone

from runlogs import store as run_logs
from runs import intake, services, shards
from runs.lifecycle import Lifecycle, degrade, rejoin, transition
from runs.live import publish, publish_meta
from runs.liverun import LiveRun, SlotState
from runs.models import Run, RunSlot
from runs.persistence import FAULTS, Persistence
from runs.redis import client
from scenarios.secrets import masker_for_run
from targets import notices as target_notices
from workers import protocol
from workers.stats import RunStats

log = logging.getLogger("swarmdeck.collector")

LIFECYCLE_EVERY = 0.25
STATISTICS = ("stats_blob", "totals", "errors", "exceptions")  # a run's heavy fields, which only persists write
CPU_WARN_PERCENT = 90.0   # a pool above this for CPU_WARN_SECONDS may be what limits the results
CPU_WARN_SECONDS = 5
# A pool whose event loop woke this late (workers.pool.LagProbe) in LAG_WARN_SECONDS seconds: its response
# times include that wait. 25 ms is far beyond a busy but healthy loop's few milliseconds.
LAG_WARN_MS = 25.0
LAG_WARN_SECONDS = 3


def warn_about_slot(run_id: int, slot: int, kind: str, message: Callable[[str], str]) -> None:
    """Add a warning of `kind` about one slot to the run (once: not if the run has one already), with the
    message `message(host)` names the slot's machine in; and log it."""
    run = Run.objects.filter(pk=run_id).only("warnings").first()
    if run is None or any(w.get("kind") == kind and w.get("slot") == slot for w in run.warnings):
        return
    host = RunSlot.objects.filter(run_id=run_id, index=slot).values_list("host", flat=True).first() or "?"
    warning = {"kind": kind, "slot": slot, "host": host, "at": timezone.now().isoformat(), "message": message(host)}
    Run.objects.filter(pk=run_id).update(warnings=[*run.warnings, warning])
    log.warning("Run %s: %s", run_id, warning["message"])


class Collector:
    def __init__(self, consumer: str | None = None, *, batch: int = 500, block_ms: int = 200,
                 guard: Callable[[], None] = lambda: None, shard: int = 0):
        self.redis = client()
        self.shard = shard            # runs/shards.py: this collector reads its stream and drives its runs only
        self.stream = shards.stream(shard)
        self.foreign: set[int] = set()   # runs of another shard named on this shard's stream (logged once each)
        self.guard = guard  # before each step that writes: raises LeadLost unless this collector surely leads
        self.consumer = consumer or default_consumer()
        self.batch = batch
        self.block_ms = block_ms
        self.live: dict[int, LiveRun] = {}   # shared with its parts: cleared, never replaced
        self.last_lifecycle = 0.0
        self.recovering = True
        self.recovery_cursor = "0"   # pending entries are re-read in id order, each once
        self.ready = False
        self.malformed = 0
        self.persistence = Persistence(self.live, ack=self.ack, guard=guard)
        self.lifecycle = Lifecycle(self.redis, self.consumer, self.live, self.live_run, self.persistence, guard=guard,
                                   shard=shard)

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
            self.redis.xgroup_create(self.stream, protocol.COLLECTOR_GROUP, id="0", mkstream=True)
        except redis_lib.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        # Entries another collector (an earlier incarnation on another host) read but never acked:
        # their ids only (the recovery read below fetches them), not a backlog's gigabytes at once.
        self.guard()
        self.redis.xautoclaim(self.stream, protocol.COLLECTOR_GROUP, self.consumer,
                              min_idle_time=0, start_id="0-0", count=100_000, justid=True)
        # Redis may have restarted without its data: what slots poll is rebuilt from the database.
        for run in Run.objects.filter(status__in=Run.HOLDING_SLOTS, collector_shard=self.shard):
            services.restore_control(run)
        self.ready = True

    def process_one(self) -> bool:
        """One iteration; True when it found events to apply."""
        # After a restart, first our own pending entries (read but never acked), then new ones.
        # The recovery read moves on past what it has seen: entries it could not ack yet (their
        # run waits for a persist) are not handed back again and again.
        start = self.recovery_cursor if self.recovering else ">"
        response = self.redis.xreadgroup(protocol.COLLECTOR_GROUP, self.consumer, {self.stream: start},
                                         count=self.batch, block=None if self.recovering else self.block_ms)
        entries = response[0][1] if response else []
        if self.recovering and not entries:
            self.recovering = False
            log.info("Collector %s caught up with its pending entries.", self.consumer)
        # A full batch (or the recovery read) leaves entries waiting: whatever slots sent meanwhile is
        # not read yet, so none of them can be judged silent or late (runs/lifecycle.py), and no
        # second is written before every slot reported it (runs/persistence.py).
        self.lifecycle.behind = self.persistence.behind = self.recovering or len(entries) >= self.batch
        for entry_id, fields in entries:
            self.guard()
            self.handle(entry_id, fields)
        if self.recovering and entries:
            self.recovery_cursor = _text(entries[-1][0])
        self.persist(force=False)
        now = time.monotonic()
        if now - self.last_lifecycle >= LIFECYCLE_EVERY:
            self.last_lifecycle = now
            self.guard()
            self.lifecycle.advance()
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
            self.on_snapshot(live, slot, entry_id, live.masker.snapshot(intake.snapshot(data, live.run_id, slot)))
            return
        if kind == protocol.EVENT_LOG:
            lines = run_logs.store(live.run_id, slot, run_logs.check(data), mask=live.masker)
            if lines:
                publish(live.run_id, {"type": "logs", "lines": lines})
        elif kind == protocol.EVENT_READY:
            self.on_ready(live, slot, intake.control(data))
        elif kind == protocol.EVENT_PREPARING:
            self.on_preparing(live, slot, intake.control(data))
        elif kind == protocol.EVENT_ERROR:
            self.on_error(live, slot, intake.control(data))
        elif kind == protocol.EVENT_DONE:
            intake.control(data)  # checked, though only its arrival counts
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
            self.redis.xack(self.stream, protocol.COLLECTOR_GROUP, *ids)

    def live_run(self, run_id: int) -> LiveRun | None:
        live = self.live.get(run_id)
        if live is not None:
            return live
        run = Run.objects.filter(pk=run_id).only("status", "stats_blob", "token", "params", "project_id",
                                                 "collector_shard").first()
        if run is None or run.status in Run.TERMINAL:
            return None
        if run.collector_shard != self.shard:  # another collector owns it: merging here would write it twice
            if run_id not in self.foreign:
                self.foreign.add(run_id)
                log.warning("Run %s belongs to collector shard %s: its entries on shard %s's stream are dropped.",
                            run_id, run.collector_shard, self.shard)
            return None
        stats = (RunStats.from_bytes(bytes(run.stats_blob)) if run.stats_blob
                 else RunStats(max_endpoints=services.max_endpoints()))  # the cap its pools were given
        slots = {s.index: SlotState(users=s.users, cpu=s.cpu, requests=s.requests, last_seq=s.last_seq,
                                    merged=s.snapshots, final=s.got_final, lost=s.status == RunSlot.Status.LOST,
                                    done=s.status in (RunSlot.Status.LOST, RunSlot.Status.FAILED))
                 for s in RunSlot.objects.filter(run_id=run_id)}
        live = LiveRun(run_id=run_id, stats=stats, slots=slots, token=run.token, slots_requested=run.slots_requested,
                       masker=masker_for_run(run))  # the slot masked its secrets; so does the collector
        self.live[run_id] = live
        return live

    # -- events --------------------------------------------------------------------------------
    def on_snapshot(self, live: LiveRun, slot: int, entry_id, snapshot: dict) -> None:
        state = live.slots.setdefault(slot, SlotState())
        silent_for = time.monotonic() - state.last_seen
        state.last_seen = time.monotonic()
        errors_before = len(live.stats.errors)
        if live.stats.apply(snapshot):
            if state.lost:
                rejoin(live, slot, state, silent_for)
            state.last_seq = snapshot["seq"]
            state.merged += 1
            state.users = snapshot["users"]
            state.classes = snapshot.get("classes") or {}
            if snapshot["kind"] == "delta":  # a final snapshot's CPU covers a fraction of a second: noise
                state.cpu = min(100.0, max(0.0, float(snapshot["cpu"])))
            state.requests += _requests(snapshot)
            state.final = state.final or snapshot["kind"] == "final"
            state.elapsed = max(state.elapsed, float(snapshot.get("elapsed") or 0.0))
            if snapshot["kind"] == "delta":
                state.tick = max(state.tick, int(snapshot["tick"]))
            live.dirty = True
            live.newest_entry_ms = max(live.newest_entry_ms, _entry_ms(entry_id))
            live.newest_elapsed = max(live.newest_elapsed, float(snapshot.get("elapsed") or 0.0))
            self.watch_cpu(live, slot, state, snapshot)
            self.watch_lag(live, slot, state, snapshot)
            # A refused host's first row is a new error row of the run: the snapshots that add none are not read.
            if len(live.stats.errors) > errors_before or live.stats.errors_overflowed:
                target_notices.warn_refused(live, snapshot)
        live.pending_acks.append(entry_id)

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
        warn_about_slot(live.run_id, slot, "cpu", lambda host: (
            f"Slot {slot} on {host} ran above {CPU_WARN_PERCENT:.0f}% CPU for more than {CPU_WARN_SECONDS} s: "
            "the results may be limited by the load generator, not the target."))

    def watch_lag(self, live: LiveRun, slot: int, state: SlotState, snapshot: dict) -> None:
        """Warn once per slot whose pool's event loop was LAG_WARN_MS late in LAG_WARN_SECONDS of its seconds."""
        lag = float(snapshot.get("lag_ms") or 0.0)
        if snapshot["kind"] != "delta" or lag < LAG_WARN_MS:
            return
        state.lagged_seconds += 1
        state.worst_lag_ms = max(state.worst_lag_ms, lag)
        if state.lag_warned or state.lagged_seconds < LAG_WARN_SECONDS:
            return
        state.lag_warned = True
        warn_about_slot(live.run_id, slot, "lag", lambda host: (
            f"Slot {slot} on {host}: its event loop ran {LAG_WARN_MS:.0f} ms or more late in {state.lagged_seconds} "
            f"seconds (up to {state.worst_lag_ms:.0f} ms). The load generator was short of CPU (busy with its users, "
            "or the machine's CPU taken: other processes, a VM's CPU steal), and the response times of those "
            "seconds include that wait: compare this run's tail latencies with care."))

    def on_ready(self, live: LiveRun, slot: int, payload: dict) -> None:
        live.slots.setdefault(slot, SlotState()).last_seen = time.monotonic()
        RunSlot.objects.filter(run_id=live.run_id, index=slot, status=RunSlot.Status.PENDING).update(
            status=RunSlot.Status.READY, worker=str(payload.get("worker", ""))[:200],
            host=str(payload.get("host", ""))[:200], pid=payload.get("pid"), last_seen=timezone.now())
        run = Run.objects.filter(pk=live.run_id, status=Run.Status.DISPATCHING).defer(*STATISTICS).first()
        if run is not None:  # the first slot ready (the others find the run starting: nothing read)
            transition(run, Run.Status.DISPATCHING, Run.Status.STARTING, "first slot ready")
        log.info("Run %s: slot %s ready on %s.", live.run_id, slot, payload.get("host"))

    def on_preparing(self, live: LiveRun, slot: int, payload: dict) -> None:
        """The slot installs its bundle's requirements: it shows as preparing, with pip's latest line."""
        live.slots.setdefault(slot, SlotState()).last_seen = time.monotonic()
        line = str(payload.get("line") or "")[:500]
        done = payload.get("done") is True
        fields = {"note": line, "last_seen": timezone.now()}
        if done:
            fields.update(status=RunSlot.Status.PENDING, prepared_at=timezone.now())
        else:
            fields.update(status=RunSlot.Status.PREPARING)
        RunSlot.objects.filter(run_id=live.run_id, index=slot,
                               status__in=[RunSlot.Status.PENDING, RunSlot.Status.PREPARING]).update(**fields)
        publish_meta(live.run_id)

    def on_error(self, live: LiveRun, slot: int, payload: dict) -> None:
        stage = payload.get("stage", "run")
        message = live.masker.text(str(payload.get("message") or "unknown error"))
        detail = live.masker.text(str(payload.get("detail") or ""))
        run = Run.objects.get(pk=live.run_id)
        host = RunSlot.objects.filter(run=run, index=slot).values_list("host", flat=True).first() or "?"
        log.warning("Run %s slot %s (%s) reported an error at %s: %s", run.pk, slot, host, stage, message)
        if stage == "limit":  # the sandbox killed the pool at one of its limits: say which, in words
            note = f"Slot {slot}: {message}"
            if run.status in (Run.Status.DISPATCHING, Run.Status.STARTING):
                RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.FAILED, error=message)
                self.lifecycle.fail(run, note, detail)
                return
            live.slots.setdefault(slot, SlotState()).done = True
            RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.FAILED, error=message)
            if not RunSlot.objects.filter(run=run).exclude(
                    status__in=[RunSlot.Status.LOST, RunSlot.Status.FAILED]).exists():
                self.lifecycle.fail(run, note, detail)  # nothing left running: the limit is the run's reason
                return
            degrade(run, note)
            return
        if stage == "users":  # every user of the slot failed in on_start: the locustfile cannot run
            RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.FAILED,
                                                               error=f"{message}\n{detail}".strip())
            self.lifecycle.fail(run, f"Slot {slot} on {host}: {message}", detail)
            return
        if stage in ("claim", "import", "start") or run.status in (Run.Status.DISPATCHING, Run.Status.STARTING):
            RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.FAILED,
                                                               error=f"{message}\n{detail}".strip())
            self.lifecycle.fail(run, f"Slot {slot} could not start: {message}", detail)
            return
        # The pool died mid-run: the run goes on degraded; what the slot sent so far is kept.
        state = live.slots.setdefault(slot, SlotState())
        state.done = True
        RunSlot.objects.filter(run=run, index=slot).update(status=RunSlot.Status.LOST,
                                                           error=f"{message}\n{detail}".strip())
        degrade(run, f"Slot {slot} on {host} was lost: {message}")

    def persist(self, force: bool) -> None:
        self.persistence.persist(force)


def default_consumer() -> str:
    """The collector's name in the consumer group (and as the lease's holder) unless one is given: per host."""
    return f"collector-{socket.gethostname()}"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _requests(snapshot: dict) -> int:
    """The requests a snapshot counts, from its columns (as intake decodes it) or its endpoint dicts."""
    columns = snapshot.get("columns")
    if columns is not None:
        return int(columns.scalars[:, 0].sum())
    return sum(int(e["count"]) for e in snapshot["endpoints"])


def _entry_ms(entry_id) -> int:
    """A stream entry id is "<milliseconds>-<sequence>": the time the slot added it."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    try:
        return int(text.split("-", 1)[0])
    except ValueError:
        return 0

