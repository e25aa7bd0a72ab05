"""Chart markers: the moments of a run a reader of its charts must see, at seconds since go.

From what the run already records, as its producers write it:
- Run.history (services, lifecycle, collector): users changed by hand ("users → 50 at 5/s by
  alice"), the stop (by a user, the duration, a LoadTestShape's end) or an abort by a pass/fail
  criterion ("Aborted: ..."), a slot lost or rejoined, a sandbox limit that killed a slot's pool
  ("Slot 0: <what>");
- Run.warnings: caps that bit (error rows, lost or rejected data) and load generators above 90 %
  CPU, which limit what the run can measure.

The live page (runs/live.py's meta) and the HTML report draw the same list (static/swarmdeck/charts.js).
"""

from __future__ import annotations

import re

from django.utils.dateparse import parse_datetime

from runs.models import Run

_USERS = re.compile(r"^users → (\d+)")
_LOST = re.compile(r"^Slot (\d+) on .+? was lost")
_NO_FINAL = re.compile(r"^Slot\(s\) ([\d, ]+) sent no final snapshot")
_REJOINED = re.compile(r"^Slot (\d+) on .+? rejoined after")
_LIMIT = re.compile(r"^Slot (\d+): ")
# Warnings that mean a cap bit or the load generator limited the run; the others (rejoined: in the
# history already; no_requests: no moment) are not markers.
_WARNING_LABELS = {"errors_capped": "Errors capped", "lost_data": "Data lost", "rejected": "Events rejected"}
MAX_MARKERS = 200   # a run whose users were changed a thousand times still sends a bounded list


def chart_markers(run: Run) -> list[dict]:
    """[{t, kind, label, text}] in time order: t in seconds since go; kind one of users, stop,
    abort, lost, rejoined, limit; label short (drawn on the chart), text the whole note."""
    if not run.started_at:
        return []
    markers = []

    def add(at: str | None, kind: str, label: str, text: str) -> None:
        when = parse_datetime(str(at or ""))
        if when is None:
            return
        seconds = (when - run.started_at).total_seconds()
        if seconds >= 0:
            markers.append({"t": round(seconds, 1), "kind": kind, "label": label, "text": text})

    for entry in run.history or []:
        status, note = entry.get("status", ""), entry.get("note", "") or ""
        kind_label = _history_marker(status, note)
        if kind_label:
            add(entry.get("at"), *kind_label, note or status)
    for warning in run.warnings or []:
        kind = warning.get("kind")
        if kind in _WARNING_LABELS:
            add(warning.get("at"), "limit", _WARNING_LABELS[kind], warning.get("message", ""))
        elif kind == "cpu":
            add(warning.get("at"), "limit", f"Slot {warning.get('slot')} CPU > 90%", warning.get("message", ""))
        elif kind == "lag":
            add(warning.get("at"), "limit", f"Slot {warning.get('slot')} lagging", warning.get("message", ""))
    markers.sort(key=lambda m: m["t"])
    return markers[:MAX_MARKERS]


def _history_marker(status: str, note: str) -> tuple[str, str] | None:
    if status == Run.Status.STOPPING:
        if note.startswith("Aborted"):
            return "abort", "Aborted"
        if note.startswith("stopped by "):
            return "stop", "Stopped by " + note.removeprefix("stopped by ")
        return "stop", (note[:1].upper() + note[1:]) if note else "Stopped"
    if status == Run.Status.FAILED:
        return "stop", "Failed"
    if match := _USERS.match(note):
        return "users", f"Users → {match.group(1)}"
    if match := _LOST.match(note):
        return "lost", f"Slot {match.group(1)} lost"
    if match := _NO_FINAL.match(note):
        return "lost", f"Slot(s) {match.group(1)} lost"
    if match := _REJOINED.match(note):
        return "rejoined", f"Slot {match.group(1)} rejoined"
    if match := _LIMIT.match(note):
        return "limit", f"Slot {match.group(1)}: limit"
    return None
