"""What the live run page receives: the full state on (re)connect, then one delta per tick.

The collector (a sync process) and the web process publish through `publish()`; the WebSocket
consumer (runs/consumers.py) relays group messages to the browser as JSON. Payload shapes are
the TypedDicts below, shared by the senders, the consumer, the page script
(static/swarmdeck/live.js) and the tests.

The page merges the time series by tick number and a delta's rows by key, so a delta that
overlaps the full state (sent between joining the group and reading the database) does no harm.
A delta carries only the rows that changed since the previous one, numbered: a page that sees a
gap in the numbers asks for the full state again ({"type": "refresh"}).
"""

from __future__ import annotations

import logging
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from runs import tick_series
from runs.markers import chart_markers
from runs.models import Run, RunSlot, RunTick
from scenarios.options import masked_params

log = logging.getLogger(__name__)

SERIES_KEYS = ("users", "rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms")


class Series(TypedDict):
    """The run's per-second time series as columns; `tick` is seconds since the users started."""

    tick: list[int]
    users: list[int]
    rps: list[float]
    fails_per_s: list[float]
    p50_ms: list[float | None]
    p95_ms: list[float | None]
    p99_ms: list[float | None]


class Meta(TypedDict):
    id: int
    status: str
    status_label: str
    active: bool
    reason: str
    degraded: bool
    warnings: list[dict]
    history: list[dict]
    params: dict
    started_at: float | None   # epoch seconds: users start on every slot
    ended_at: float | None
    now: float                 # the server's clock, so the page can compute elapsed time
    users: int                 # users running now (sum over slots)
    class_users: dict          # users running now per user class ({} when unknown)
    requests: int
    failures: int
    endpoints_overflowed: bool
    queue_position: int | None
    queue: dict                # a queued run's place (sharing.queue.describe): position, reason, estimated_start, eta
    verdict: str               # "pass", "fail", or "" (no criteria, or not judged yet)
    criteria: list[dict]       # Run.verdict_details: one entry per criterion (runs/thresholds.py)
    markers: list[dict]        # runs.markers.chart_markers: [{t, kind, label, text}] drawn on every chart


class State(TypedDict):
    type: str                  # "state"
    meta: Meta
    totals: list[dict]         # endpoint rows sorted by name, "Aggregated" last (runs.collector)
    errors: list[dict]
    exceptions: list[dict]
    slots: list[dict]
    series: Series             # with users_min, p50_ms_min ... too when downsampled (runs/downsample.py)
    series_width: int          # seconds per point of `series`: 1, or a long run's bucket width
    current: dict              # "METHOD name" -> figures of the latest complete second


class Delta(TypedDict, total=False):
    type: str                  # "delta" (statistics, once per tick) or "meta" (a state change)
    meta: Meta
    # A "delta" carries the rows that changed since the previous one (runs/changes.py), which the page
    # applies by key; a "meta" carries every slot.
    seq: int                   # 1, 2, 3 ... per collector (`epoch`): a gap makes the page ask for the state
    epoch: str
    totals: list[dict]         # endpoint rows that changed, then the Aggregated row (always)
    errors: list[dict]         # error rows whose count changed
    slots: list[dict]
    removed: dict              # only when rows are gone: {"totals": [[method, name]], "errors": [[method, name,
                               # error]], "slots": [index]}
    exceptions: list[dict]     # only when they changed (all of them)
    series: Series             # the ticks closed since the previous delta
    current: dict
    produced_at: float | None  # when the newest snapshot merged here entered the stream (epoch s)


def run_group(run_id: int) -> str:
    return f"run-{int(run_id)}"


def meta(run: Run) -> Meta:
    from django.utils import timezone

    return {
        "id": run.pk, "status": run.status, "status_label": run.get_status_display(), "active": run.is_active,
        "reason": run.reason, "degraded": run.degraded, "warnings": run.warnings or [], "history": run.history or [],
        "params": masked_params(run.params),
        "started_at": run.started_at.timestamp() if run.started_at else None,
        "ended_at": run.ended_at.timestamp() if run.ended_at else None,
        "now": timezone.now().timestamp(), "users": run.current_users, "class_users": run.class_users or {},
        "requests": run.total_requests,
        "failures": run.total_failures, "endpoints_overflowed": run.endpoints_overflowed,
        **_queue(run), "verdict": run.verdict, "criteria": run.verdict_details or [],
        "markers": chart_markers(run),
    }


def _queue(run: Run) -> dict:
    """queue_position and queue (its reason and estimated start) of a queued run, from the fair queue's plan."""
    from runs.services import queue_entry  # services publishes through this module
    from sharing import queue

    entry = queue_entry(run) if run.status == Run.Status.QUEUED else None
    place = {**queue.describe(entry), "eta": queue.eta_words(entry) if entry else ""}
    return {"queue_position": place["position"], "queue": place}


SLOT_FIELDS = ("index", "host", "worker", "status", "users", "cpu", "requests", "error", "note")


def slot_rows(run_id: int) -> list[dict]:
    """The run's slots as the page shows them: plain rows, not models (every push of a 100-slot run reads them)."""
    return list(RunSlot.objects.filter(run_id=run_id).order_by("index").values(*SLOT_FIELDS))


def series_of(ticks: list[dict]) -> Series:
    return {"tick": [t["tick"] for t in ticks], **{key: [t[key] for t in ticks] for key in SERIES_KEYS}}


def full_state(run: Run) -> State:
    """Everything the page shows, from the database: sent first on every (re)connect."""
    # A long run's series comes in at most 2,000 buckets of `series_width` seconds (runs/tick_series.py).
    series, width = tick_series.first_paint(run)
    latest = RunTick.objects.filter(run=run).order_by("-tick").values_list("endpoints", flat=True).first()
    return {
        "type": "state", "meta": meta(run), "totals": run.totals or [], "errors": run.errors or [],
        "exceptions": run.exceptions or [], "slots": slot_rows(run.pk), "series": series,  # type: ignore[typeddict-item]
        "series_width": width, "current": latest or {},
    }


def publish(run_id: int, message: dict) -> None:
    """Send one message to everyone watching the run; never let a Redis hiccup break the caller."""
    try:
        async_to_sync(get_channel_layer().group_send)(run_group(run_id), {"type": "run.message", "message": message})
    except Exception as error:  # noqa: BLE001 - the page catches up from the database on reconnect
        log.warning("Run %s: could not publish a live update: %s", run_id, error)


def publish_meta(run_id: int) -> None:
    """A state change (stopping, cancelled, users changed, ...) that did not come with statistics."""
    run = Run.objects.filter(pk=run_id).defer("stats_blob", "totals", "errors", "exceptions").first()
    if run is not None:
        publish(run_id, {"type": "meta", "meta": meta(run), "slots": slot_rows(run_id)})
