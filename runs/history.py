"""Run history, trends and comparison: the numbers behind the history pages.

Functions here take runs the views have already scoped to the user and return plain data
for templates and charts (lists, dicts, strings); none of them checks access.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from django import forms
from django.db.models import Avg, ExpressionWrapper, F, IntegerField, Max

from runs.models import Run, RunTick
from scenarios import bundles
from scenarios.options import masked_params

PAGE_SIZE = 25
TREND_DEFAULT = 20
TREND_CHOICES = (10, 20, 50, 100)
COMPARE_MIN, COMPARE_MAX = 2, 5
# One browser pixel per point is plenty: longer runs are averaged into buckets server-side.
MAX_CHART_POINTS = 600
MAX_DIFF_LINES = 2000
# Relative change (in %) up to which a delta is noise, and up to which it is only "light".
NEUTRAL_PCT, LIGHT_PCT = 5.0, 20.0
# SwarmCharts.colors.palette, so a run's swatch in the tables matches its line in the charts.
PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626")


# ---------------------------------------------------------------- history filters

class RunFilterForm(forms.Form):
    """The GET filters of the run history. Invalid fields are dropped, the valid ones still apply."""

    scenario = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="All scenarios",
        error_messages={"invalid_choice": "There is no scenario “%(value)s” in this project."},
    )
    state = forms.ChoiceField(
        choices=[("", "Any state"), ("active", "Active (queued … stopping)"), *Run.Status.choices], required=False,
        error_messages={"invalid_choice": "“%(value)s” is not a run state."},
    )
    trigger = forms.ChoiceField(
        choices=[("", "Any trigger"), *Run.Trigger.choices], required=False,
        error_messages={"invalid_choice": "“%(value)s” is not a trigger."},
    )
    verdict = forms.ChoiceField(
        choices=[("", "Any verdict"), *Run.Verdict.choices, ("none", "No criteria")], required=False,
        error_messages={"invalid_choice": "“%(value)s” is not a verdict: choose pass, fail or none."},
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From",
                            error_messages={"invalid": "Write the start date as YYYY-MM-DD."})
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To",
                            error_messages={"invalid": "Write the end date as YYYY-MM-DD."})

    def __init__(self, data, project):
        super().__init__(data)
        self.fields["scenario"].queryset = project.scenarios.all()

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", f"The end date {until} is before the start date {since}.")
        return data

    def problems(self) -> list[str]:
        """Every error as one sentence, for a message above the list."""
        return [str(error) for errors in self.errors.values() for error in errors]


def filter_runs(runs, form: RunFilterForm):
    """`runs` narrowed by the form's valid filters (call form.is_valid() first)."""
    data = form.cleaned_data
    if data.get("scenario"):
        runs = runs.filter(scenario=data["scenario"])
    if data.get("state") == "active":
        runs = runs.filter(status__in=Run.ACTIVE)
    elif data.get("state"):
        runs = runs.filter(status=data["state"])
    if data.get("trigger"):
        runs = runs.filter(trigger=data["trigger"])
    if data.get("verdict") == "none":
        runs = runs.filter(verdict="")
    elif data.get("verdict"):
        runs = runs.filter(verdict=data["verdict"])
    if data.get("since"):
        runs = runs.filter(created_at__date__gte=data["since"])
    if data.get("until"):
        runs = runs.filter(created_at__date__lte=data["until"])
    return runs


def failure_percent(failures, requests) -> float | None:
    return 100.0 * failures / requests if requests else None


# ---------------------------------------------------------------- trends

def parse_trend_limit(raw: str | None) -> tuple[int, str]:
    """N for the trends, and a message when the asked value was unusable."""
    if not raw:
        return TREND_DEFAULT, ""
    if raw.isdigit() and 2 <= int(raw) <= max(TREND_CHOICES):
        return int(raw), ""
    top = max(TREND_CHOICES)
    return TREND_DEFAULT, f"“{raw}” is not a number of runs between 2 and {top}; showing {TREND_DEFAULT}."


def trend(scenario, limit: int) -> dict:
    """Headline figures of the scenario's last `limit` finished runs, oldest first, as chart columns."""
    runs = list(
        scenario.runs.filter(status=Run.Status.FINISHED)
        .only("id", "created_at", "started_at", "ended_at", "total_requests", "total_failures", "rps",
              "p50_ms", "p95_ms", "p99_ms", "params")
        .order_by("-created_at", "-id")[:limit]
    )
    runs.reverse()
    points = [{
        "index": index, "id": run.pk, "url": run.get_absolute_url(), "at": run.created_at,
        "requests": run.total_requests, "rps": run.rps, "p50_ms": run.p50_ms, "p95_ms": run.p95_ms,
        "p99_ms": run.p99_ms, "fail_pct": failure_percent(run.total_failures, run.total_requests),
        "users": run.params.get("users"),
    } for index, run in enumerate(runs, start=1)]
    return {
        "limit": limit, "count": len(points), "points": points,
        "x": [p["index"] for p in points], "ids": [p["id"] for p in points], "urls": [p["url"] for p in points],
        **{key: [p[key] for p in points] for key in ("p50_ms", "p95_ms", "p99_ms", "rps", "fail_pct")},
    }


# ---------------------------------------------------------------- comparison: which runs

class CompareError(ValueError):
    """A comparison request that cannot be answered; the message is shown as is."""


def parse_run_ids(values: list[str]) -> list[int]:
    """Run ids from ?runs=3,7,9 (or repeated ?runs=3&runs=7 from the history checkboxes), in order."""
    parts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    bad = [part for part in parts if not part.isdigit()]
    if bad:
        raise CompareError(f"Run ids are numbers; “{bad[0]}” is not one.")
    ids = [int(part) for part in parts]
    duplicates = sorted({run_id for run_id in ids if ids.count(run_id) > 1})
    if duplicates:
        raise CompareError(f"Run #{duplicates[0]} is listed more than once; pick each run once.")
    if len(ids) < COMPARE_MIN:
        raise CompareError(f"Pick at least {COMPARE_MIN} runs to compare ({len(ids)} given).")
    if len(ids) > COMPARE_MAX:
        raise CompareError(f"Compare at most {COMPARE_MAX} runs at a time ({len(ids)} given).")
    return ids


# ---------------------------------------------------------------- comparison: endpoint table

@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    better: str | None  # "lower", "higher", or None when a change is neither good nor bad


METRICS = (
    Metric("requests", "Requests", "", None),
    Metric("fail_pct", "Failures", "%", "lower"),
    Metric("rps", "RPS", "", "higher"),
    Metric("p50", "p50", "ms", "lower"),
    Metric("p95", "p95", "ms", "lower"),
    Metric("p99", "p99", "ms", "lower"),
    Metric("mean_ms", "Average", "ms", "lower"),
)


def endpoint_figures(row: dict) -> dict:
    """The compared figures of one totals row."""
    requests = row.get("requests") or 0
    return {
        "requests": requests, "fail_pct": failure_percent(row.get("failures") or 0, requests) or 0.0,
        "rps": row.get("rps"), "p50": row.get("p50"), "p95": row.get("p95"), "p99": row.get("p99"),
        "mean_ms": row.get("mean_ms"),
    }


# Changes smaller than this are noise whatever their percentage (0.4 -> 0.42 ms is "+5%").
MIN_ABSOLUTE_CHANGE = {"ms": 1.0, "%": 0.5}


def delta_class(better: str | None, base: float | None, value: float | None, min_absolute: float = 0.0) -> str:
    """CSS class of a change: better/worse, light/strong by its size; "neutral" within ±5% or below
    `min_absolute` in the metric's unit."""
    if better is None or base is None or value is None:
        return ""
    if value == base or abs(value - base) < min_absolute:
        return "neutral"
    if base == 0:
        magnitude = "strong"
    else:
        # Rounded as shown ("+20.0%"), so a delta printed as 20.0% is never coloured as above 20%.
        change = round(abs(value - base) / abs(base) * 100, 1)
        if change <= NEUTRAL_PCT:
            return "neutral"
        magnitude = "light" if change <= LIGHT_PCT else "strong"
    improved = value < base if better == "lower" else value > base
    return f"{'better' if improved else 'worse'}-{magnitude}"


def format_value(metric: Metric, value) -> str:
    if value is None:
        return "—"
    if metric.key == "requests":
        return f"{int(value):,}"
    if metric.key == "fail_pct":
        return f"{value:.2f}%"
    if metric.unit == "ms":
        return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,.1f}"


def format_delta(metric: Metric, base, value) -> str:
    """'+12.3 ms (+8.1%)': the absolute change in the metric's unit, then the relative one."""
    if base is None or value is None:
        return ""
    diff = value - base
    if metric.key == "requests":
        absolute = f"{int(diff):+,}"
    elif metric.key == "fail_pct":
        absolute = f"{diff:+.2f} pp"
    else:
        absolute = f"{diff:+,.1f}" + (f" {metric.unit}" if metric.unit else "")
    if base:
        relative = f"{diff / abs(base) * 100:+.1f}%"
    else:
        relative = "±0%" if diff == 0 else "new"
    return f"{absolute} ({relative})"


def compare_endpoints(runs: list[Run]) -> list[dict]:
    """Per endpoint (method + name, Aggregated first), each run's figures and deltas vs runs[0].

    A run without the endpoint gets None; the template shows it as missing.
    """
    by_run = [{(row.get("method") or "", row.get("name")): row for row in run.totals} for run in runs]
    keys = {key for rows in by_run for key in rows}
    aggregated = [key for key in keys if key[1] == "Aggregated"]
    ordered = sorted(aggregated) + sorted((key for key in keys if key[1] != "Aggregated"),
                                          key=lambda key: (key[1] or "", key[0]))
    table = []
    for key in ordered:
        figures = [endpoint_figures(rows[key]) if key in rows else None for rows in by_run]
        base = figures[0]
        cells = []
        for index, (run, mine) in enumerate(zip(runs, figures)):
            if mine is None:
                cells.append({"run": run, "missing": True, "baseline": index == 0})
                continue
            values = []
            for metric in METRICS:
                value = mine[metric.key]
                reference = base[metric.key] if base is not None and index > 0 else None
                values.append({
                    "text": format_value(metric, value),
                    "delta": format_delta(metric, reference, value) if reference is not None else "",
                    "css": (delta_class(metric.better, reference, value, MIN_ABSOLUTE_CHANGE.get(metric.unit, 0.0))
                            if reference is not None else ""),
                })
            cells.append({"run": run, "missing": False, "baseline": index == 0, "values": values,
                          "no_baseline": base is None and index > 0})
        table.append({"method": key[0], "name": key[1], "cells": cells})
    return table


# ---------------------------------------------------------------- comparison: what differed

PARAMETERS = (
    ("users", "Users"), ("spawn_rate", "Spawn rate (users/s)"), ("duration", "Duration"), ("host", "Host"),
    ("slots", "Worker slots"), ("user_classes", "User classes"), ("tags", "Tags"), ("exclude_tags", "Excluded tags"),
    ("stop_timeout", "Stop timeout (s)"),
)


def _show(value) -> str:
    if value in (None, "", [], {}):
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def parameter_rows(runs: list[Run]) -> list[dict]:
    """One row per parameter with each run's value; `differs` when the runs do not all agree."""
    from scenarios.durations import format_duration

    rows = [
        ("Scenario", [run.scenario.name for run in runs]),
        ("Locustfile version", [f"v{run.version.number} · {run.version.sha256[:12]}" for run in runs]),
        ("Trigger", [run.get_trigger_display() for run in runs]),
    ]
    for key, label in PARAMETERS:
        values = [run.params.get(key) for run in runs]
        if key == "duration":
            shown = [format_duration(int(value)) if value else "—" for value in values]
        elif key == "users":  # changed while running ("Edit users"): say so, it explains the charts
            shown = [_show(run.params.get("users")) + (f" → {run.params['live_users']} during the run"
                                                      if run.params.get("live_users") is not None else "")
                     for run in runs]
        else:
            shown = [_show(value) for value in values]
        rows.append((label, shown))
    options = [masked_params(run.params).get("options") or {} for run in runs]
    if any(options):
        rows.append(("Locustfile options", [" ".join(f"--{name.replace('_', '-')} {value}"
                                                     for name, value in sorted(values.items())) or "—"
                                            for values in options]))
    return [{"label": label, "values": values, "differs": len(set(values)) > 1} for label, values in rows]


# ---------------------------------------------------------------- comparison: locustfile diffs

def _text(content: bytes | None) -> str | None:
    """A file's text ("" when the file is absent), or None when it is not UTF-8 text."""
    if content is None:
        return ""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def diff_versions(old, new, max_lines: int = MAX_DIFF_LINES) -> dict:
    """A unified diff per changed file between two locustfile versions, capped at `max_lines` lines.

    Lines are (css class, text) pairs; the template escapes the text.
    """
    try:
        before = bundles.open_stored(old.kind, bytes(old.content)).files
        after = bundles.open_stored(new.kind, bytes(new.content)).files
    except bundles.BundleError as error:
        return {"files": [], "error": f"A stored bundle could not be read: {error.message}", "truncated": 0}
    files, shown, truncated = [], 0, 0
    for path in sorted(set(before) | set(after)):
        if before.get(path) == after.get(path):
            continue
        status = "added" if path not in before else "removed" if path not in after else "changed"
        a, b = _text(before.get(path)), _text(after.get(path))
        if a is None or b is None:
            files.append({"path": path, "status": status, "lines": [], "note": "Not a text file; no line diff."})
            continue
        lines = []
        diff = difflib.unified_diff(a.splitlines(), b.splitlines(), f"v{old.number}/{path}", f"v{new.number}/{path}",
                                    lineterm="", n=3)
        for position, line in enumerate(diff):
            if shown >= max_lines:
                truncated += 1
                continue
            shown += 1
            css = ("file" if position < 2 else "hunk" if line.startswith("@@")
                   else "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx")
            lines.append((css, line))
        files.append({"path": path, "status": status, "lines": lines, "note": ""})
    return {"files": files, "error": "", "truncated": truncated}


def source_diffs(runs: list[Run]) -> list[dict]:
    """Diffs from the baseline's locustfile to each other version used in the comparison (once per version)."""
    baseline = runs[0].version
    diffs, seen = [], {baseline.pk}
    for run in runs[1:]:
        version = run.version
        if version.pk in seen:
            continue
        seen.add(version.pk)
        entry = {"old": baseline, "new": version, "runs": [r.pk for r in runs if r.version_id == version.pk]}
        if version.sha256 == baseline.sha256:
            entry.update(identical=True, files=[], error="", truncated=0)
        else:
            entry.update(identical=False, **diff_versions(baseline, version))
        diffs.append(entry)
    return diffs


# ---------------------------------------------------------------- comparison: overlaid time series

def overlay_series(runs: list[Run], max_points: int = MAX_CHART_POINTS) -> dict | None:
    """RPS, p50 and p95 per run on a shared x axis of seconds since each run's start.

    Runs longer than `max_points` seconds are averaged into buckets of `step` seconds in the
    database, so an hour-long comparison sends 600 points per run, not 3,600, and never
    loads the per-endpoint JSON of the ticks.
    """
    run_ids = [run.pk for run in runs]
    ticks = RunTick.objects.filter(run_id__in=run_ids).order_by()
    last = ticks.aggregate(last=Max("tick"))["last"]
    if last is None:
        return None
    step = max(1, math.ceil((last + 1) / max_points))
    if step == 1:
        rows = ticks.values_list("run_id", "tick", "rps", "p50_ms", "p95_ms")
    else:
        bucket = ExpressionWrapper(F("tick") / step, output_field=IntegerField())
        rows = ((run_id, b * step, rps, p50, p95) for run_id, b, rps, p50, p95 in (
            ticks.annotate(bucket=bucket).values("run_id", "bucket")
            .annotate(avg_rps=Avg("rps"), avg_p50=Avg("p50_ms"), avg_p95=Avg("p95_ms"))
            .values_list("run_id", "bucket", "avg_rps", "avg_p50", "avg_p95")))
    points: dict[int, dict[int, tuple]] = {run_id: {} for run_id in run_ids}
    for run_id, x, rps, p50, p95 in rows:
        points[run_id][x] = (rps, p50, p95)
    xs = sorted({x for per_run in points.values() for x in per_run})

    def column(run_id, position):
        per_run = points[run_id]
        return [_round(per_run[x][position]) if x in per_run else None for x in xs]

    return {
        "x": xs, "step": step, "runs": [f"#{run_id}" for run_id in run_ids],
        "rps": [column(run_id, 0) for run_id in run_ids],
        "p50": [column(run_id, 1) for run_id in run_ids],
        "p95": [column(run_id, 2) for run_id in run_ids],
    }


def _round(value):
    return None if value is None else round(value, 2)
