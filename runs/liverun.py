"""A live run as the collector holds it in memory: its merged statistics and each slot's state.

Shared by the collector's parts (runs/collector.py reads the stream into it, runs/persistence.py
writes it to the database, runs/lifecycle.py judges its slots); it imports none of them.
"""

import time
from dataclasses import dataclass, field

from runs import intake
from runs.changes import Pushed
from runs.windows import Tracker
from workers.envvars import Masker
from workers.stats import RunStats


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
    lagged_seconds: int = 0       # seconds whose event loop was late by LAG_WARN_MS or more
    worst_lag_ms: float = 0.0
    lag_warned: bool = False
    lost: bool = False            # marked lost for its silence; its next snapshot makes it rejoin
    classes: dict = field(default_factory=dict)  # users running per user class, as of its latest snapshot


@dataclass
class LiveRun:
    run_id: int
    stats: RunStats
    slots: dict[int, SlotState]
    token: str = ""
    slots_requested: int = 1
    rejections: intake.Rejections = field(default_factory=intake.Rejections)
    errors_capped: bool = False      # the run says that error rows were capped
    targets_warned: bool = False     # the run says that requests to unlisted hosts were refused (targets.notices)
    pending_acks: list = field(default_factory=list)
    dirty: bool = False
    last_persist: float = 0.0
    written_through: int = -1       # ticks up to this one are persisted and pushed
    newest_entry_ms: int = 0        # stream time of the newest snapshot merged since the last push
    newest_elapsed: float = 0.0     # its time since go on the pool's clock: go time + this = when the pool made it
    exceptions_seen: int = -1       # exception count last pushed: tracebacks travel only when they change
    masker: Masker = field(default_factory=Masker)  # the values of the secrets the run received
    windows: Tracker = field(default_factory=Tracker)  # rolling windows its windowed criteria judge (runs/windows.py)
    slot_pks: dict[int, int] = field(default_factory=dict)  # RunSlot primary keys by slot index, read once
    pushed: Pushed = field(default_factory=Pushed)  # what its pages were last sent: pushes carry what changed

    def complete_tick(self) -> int:
        """The latest second every running slot has reported (its deltas arrive in order)."""
        reporting = [s.tick for s in self.slots.values() if not s.done and not s.final]
        return min(reporting) if reporting else -1
