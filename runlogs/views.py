"""The Logs tab's data and the logs download. Login is enforced by LoginRequiredMiddleware; the run
comes through get_run_for_user, so other projects' runs answer 404 and viewers may read."""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpResponse, JsonResponse

from runlogs import store
from runlogs.models import LogLine
from runs.access import get_run_for_user
from workers import logs

PAGE = 1000


def _filtered(request, run_id: int):
    lines = LogLine.objects.filter(run_id=run_id)
    slots = [int(s) for s in request.GET.getlist("slot") if s.isdigit()]
    if slots:
        lines = lines.filter(slot__in=slots)
    levels = [level for level in request.GET.getlist("level") if level in logs.LEVELS]
    if levels:
        lines = lines.filter(level__in=levels)
    text = request.GET.get("q", "").strip()
    if text:
        lines = lines.filter(message__icontains=text[:200])
    return lines


def logs_json(request, run_id: int):
    """The last PAGE matching lines (oldest first), what was dropped, and the run's slots."""
    run, _ = get_run_for_user(request, run_id)
    lines = _filtered(request, run.pk)
    rows = list(lines.order_by("-t", "-slot", "-seq")[:PAGE])
    return JsonResponse({
        "lines": [store.as_dict(row) for row in reversed(rows)],
        "matching": lines.count(),
        "notes": store.notes(run.pk),
        "slots": sorted(set(LogLine.objects.filter(run=run).values_list("slot", flat=True))),
        "levels": list(logs.LEVELS),
    }, headers={"Cache-Control": "private, no-store"})


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def logs_text(request, run_id: int):
    """Every kept line that matches, as text: `time slot N LEVEL logger: message`."""
    run, _ = get_run_for_user(request, run_id)
    chosen = [f"{name}={value}" for name in ("slot", "level", "q") for value in request.GET.getlist(name) if value]
    which = f"the lines matching {', '.join(chosen)}" if chosen else "logs of every slot"
    head = [f"# Run #{run.pk} of {run.scenario.name}: {which}, oldest first (times in UTC)."]
    head += [f"# {note}" for note in store.notes(run.pk)]
    body = []
    for row in _filtered(request, run.pk).order_by("t", "slot", "seq").iterator(chunk_size=2000):
        source = f" {row.logger}:" if row.logger else ""
        body.append(f"{_stamp(row.t)} slot {row.slot} {row.level}{source} {row.message}")
    response = HttpResponse("\n".join(head + body) + "\n", content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="swarmdeck-run{run.pk}-logs.txt"'
    response["Cache-Control"] = "private, no-store"
    return response
