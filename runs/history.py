"""Run history and comparison: the numbers behind the history pages (trends: runs/trends.py).

Functions here take runs the views have already scoped to the user and return plain data
for templates and charts (lists, dicts, strings); none of them checks access.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from django import forms
from django.db.models import Avg, ExpressionWrapper, F, IntegerField, Max, Min

from controlcenter.forms import DateRangeChecks, since_field, until_field
from runs import evidence, run_noise, significance
from runs import labels as run_labels
from runs.models import Run, RunTick
from scenarios import bundles
from scenarios.options import masked_params

PAGE_SIZE = 25
COMPARE_MIN, COMPARE_MAX = 2, 5
# One browser pixel per point is plenty: longer runs are averaged into buckets server-side.
MAX_CHART_POINTS = 600
MAX_DIFF_LINES = 2000
# A significant change up to this relative size (in %) is coloured "light", above it "strong".
LIGHT_PCT = 20.0
# SwarmCharts.colors.palette, so a run's swatch in the tables matches its line in the charts.
PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626")


# ---------------------------------------------------------------- history filters

class RunFilterForm(DateRangeChecks, forms.Form):
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
    since = since_field()
    until = until_field()

    def __init__(self, data, project):
        super().__init__(data)
        self.fields["scenario"].queryset = project.scenarios.all()
        # ?label=env=staging, repeatable: runs carrying every one (runs/labels.py).
        values = data.getlist("label") if hasattr(data, "getlist") else []
        self.label_filters, self.label_problems = run_labels.parse_filters(values)

    def problems(self) -> list[str]:
        """Every error as one sentence, for a message above the list."""
        return [str(error) for errors in self.errors.values() for error in errors] + self.label_problems


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
    return run_labels.filter_runs(runs, form.label_filters)


def failure_percent(failures, requests) -> float | None:
    return 100.0 * failures / requests if requests else None


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


def cell_class(verdict: significance.Verdict | None) -> str:
    """CSS class of a compared cell. Colour means significance: better/worse only for a significant
    change (light up to 20%, strong above), "neutral" for no significant change, "unjudged" when
    one run lacks the data for an interval, "" for figures that are not judged (request counts)."""
    if verdict is None:
        return ""
    if verdict.outcome == significance.SAME:
        return "neutral"
    if verdict.outcome not in (significance.BETTER_, significance.WORSE):
        return "unjudged"
    base = verdict.base.value
    # Rounded as shown ("+20.0%"), so a delta printed as 20.0% is never coloured as above 20%.
    size = math.inf if not base else round(abs(verdict.change) / abs(base) * 100, 1)
    return f"{verdict.outcome}-{'light' if size <= LIGHT_PCT else 'strong'}"


def _number(figure: str, value: float, signed: bool = False) -> str:
    """A figure or a change in its unit, as precise as its size needs: '0.42 ms', '+12.3 ms', '1.25%'."""
    if math.isinf(value):
        return ("+" if value > 0 else "−") + "∞"
    sign = "+" if signed else ""
    unit = significance.UNITS[figure]
    if unit == "ms":
        text = f"{value:{sign},.2f}" if abs(value) < 10 else f"{value:{sign},.1f}" if abs(value) < 1000 \
            else f"{value:{sign},.0f}"
        return f"{text} ms"
    if figure == "fail_pct":
        return f"{value:{sign}.2f}" + (" pp" if signed else "%")
    return f"{value:{sign},.1f}/s"


def _interval(figure: str, estimate: significance.Estimate, signed: bool = False) -> str:
    """'12.10 ms … 13.40 ms', or with an open side 'up to 13.40 ms' / 'at least 12.10 ms' / 'unbounded'."""
    low, high = estimate.low, estimate.high
    if math.isinf(low) and math.isinf(high):
        return "unbounded"
    if math.isinf(low):
        return f"up to {_number(figure, high, signed)}"
    if math.isinf(high):
        return f"at least {_number(figure, low, signed)}"
    return f"{_number(figure, low, signed)} … {_number(figure, high, signed)}"


def estimate_text(figure: str, estimate: significance.Estimate) -> str:
    """'p95 103.0 ms (99% interval 101.2 ms … 104.9 ms; order statistics: samples 4,709 and 4,790 of 5,000)'."""
    if estimate.value is None:
        return f"{FIGURE_NAMES[figure]}: no interval (the run kept no histogram or per-second rows for it)"
    how = f"; {estimate.method}" if estimate.method else ""
    return (f"{FIGURE_NAMES[figure]} {_number(figure, estimate.value)} ({estimate.level * 100:g}% interval "
            f"{_interval(figure, estimate)}{how})")


def verdict_text(verdict: significance.Verdict, base_run: Run) -> str:
    """The hover text of a compared cell: its interval, the baseline's, the change's, the verdict and why."""
    base = verdict.base
    lines = [estimate_text(verdict.figure, verdict.other),
             f"vs #{base_run.pk}: " + (f"{_number(verdict.figure, base.value)} ({_interval(verdict.figure, base)})"
                                       if base.value is not None else "no interval")]
    if verdict.change is None:
        lines.append(f"Not judged: {verdict.reason}.")
        return "\n".join(lines)
    change = significance.Estimate(verdict.change, verdict.low, verdict.high, base.level, 0, "")
    why = "" if verdict.outcome not in (significance.SAME, significance.UNKNOWN) else (
        f" ({verdict.reason}; minimum effect {_number(verdict.figure, verdict.minimum).replace('%', ' pp')})")
    lines.append(f"Change {_number(verdict.figure, verdict.change, signed=True)} "
                 f"({_interval(verdict.figure, change, signed=True)}): {verdict.text}{why}")
    return "\n".join(lines)


FIGURE_NAMES = {"fail_pct": "Failure ratio", "rps": "RPS", "p50": "p50", "p95": "p95", "p99": "p99",
                "mean_ms": "Average"}


def rule_text(rule: significance.Rule) -> dict[str, str]:
    """The rule's figures as the legend says them: '99%', '1 ms', '2%', '0.5 pp'."""
    return {"level": f"{rule.level * 100:g}%", "min_ms": f"{rule.min_ms:g} ms",
            "min_relative": f"{rule.min_relative * 100:g}%", "min_failure": f"{rule.min_failure_pp:g} pp"}


def compare_rule() -> significance.Rule:
    """The site's comparison rule (settings SWARMDECK_COMPARE_*)."""
    from django.conf import settings

    return significance.Rule(level=settings.SWARMDECK_COMPARE_LEVEL, min_ms=settings.SWARMDECK_COMPARE_MIN_MS,
                             min_relative=settings.SWARMDECK_COMPARE_MIN_PERCENT / 100,
                             min_failure_pp=settings.SWARMDECK_COMPARE_MIN_FAILURE_PP)


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


def compare_endpoints(runs: list[Run], rule: significance.Rule | None = None,
                      noise: run_noise.Noise | None = None) -> list[dict]:
    """Per endpoint (method + name, Aggregated first), each run's figures and their verdicts vs runs[0].

    Each judged value says better / worse / no significant change against the baseline
    (runs/significance.py: intervals from each run's histograms and per-second rows), with both
    intervals and the change's in `title`. A run without the endpoint gets None; the template
    shows it as missing.
    """
    rule = rule or compare_rule()
    if noise is None:   # the base run's earlier equal runs (runs/run_noise.py) widen every run's intervals
        noise = run_noise.of_history(runs[0], rule.level, exclude=[r.pk for r in runs]) if runs else run_noise.NONE
    by_run = [{evidence.row_key(row): row for row in run.totals or []} for run in runs]
    keys = {key for rows in by_run for key in rows}
    aggregated = [key for key in keys if key[1] == "Aggregated"]
    ordered = sorted(aggregated) + sorted((key for key in keys if key[1] != "Aggregated"),
                                          key=lambda key: (key[1] or "", key[0]))
    base_keys = [key for key in ordered if key in by_run[0]]
    base_samples = evidence.samples(runs[0], base_keys) if runs else {}
    base_estimates = {key: _with_noise(significance.estimates(sample, rule.level), noise, key)
                      for key, sample in base_samples.items()}
    verdicts_of = {}  # (run index, key) -> {figure: Verdict}
    for index, run in enumerate(runs[1:], start=1):
        shared = [key for key in ordered if key in by_run[index] and key in by_run[0]]
        if not shared:
            continue
        for key, sample in evidence.samples(run, shared).items():
            mine = _with_noise(significance.estimates(sample, rule.level), noise, key)
            verdicts_of[index, key] = {figure: significance.judge(figure, base_estimates[key][figure], mine[figure],
                                                                  rule) for figure in significance.FIGURES}
    table = []
    for key in ordered:
        figures = [endpoint_figures(rows[key]) if key in rows else None for rows in by_run]
        base = figures[0]
        cells = []
        for index, (run, mine) in enumerate(zip(runs, figures)):
            if mine is None:
                cells.append({"run": run, "missing": True, "baseline": index == 0})
                continue
            verdicts = verdicts_of.get((index, key), {})
            values = []
            for metric in METRICS:
                value = mine[metric.key]
                reference = base[metric.key] if base is not None and index > 0 else None
                verdict = verdicts.get(metric.key)
                if index == 0 and metric.key in base_estimates.get(key, {}):
                    title = estimate_text(metric.key, base_estimates[key][metric.key])
                else:
                    title = verdict_text(verdict, runs[0]) if verdict is not None else ""
                judged = verdict is not None and reference is not None
                values.append({
                    "key": metric.key, "text": format_value(metric, value),
                    "delta": format_delta(metric, reference, value) if reference is not None else "",
                    "css": cell_class(verdict) if reference is not None else "",
                    "verdict": verdict.text if judged else "", "title": title,
                    "outcome": verdict.outcome if judged else "",
                    "change": _finite(verdict.change) if judged else None,
                    "interval": [_finite(verdict.low), _finite(verdict.high)] if judged else None,
                })
            cells.append({"run": run, "missing": False, "baseline": index == 0, "values": values,
                          "no_baseline": base is None and index > 0})
        table.append({"method": key[0], "name": key[1], "cells": cells})
    return table


def _with_noise(found: dict[str, significance.Estimate], noise: run_noise.Noise, key) -> dict:
    """One endpoint's estimates widened by the run-to-run noise of its figures."""
    sd = noise.of(key)
    return {figure: significance.with_run_noise(estimate, sd.get(figure, 0.0), noise.runs,
                                                significance.NOISE_UNITS[figure])
            for figure, estimate in found.items()}


def noise_text(noise: run_noise.Noise) -> str:
    """The compare page's line on run-to-run noise: which runs taught it, or why there is none."""
    if noise.runs >= significance.MIN_NOISE_RUNS:
        runs = ", ".join(f"#{pk}" for pk in noise.run_ids)
        return (f"Intervals include the run-to-run noise of {noise.runs} earlier runs of the baseline's scenario "
                f"with the same parameters and labels ({runs}): how much equal runs differ beyond their own intervals.")
    plural = "s" if noise.runs != 1 else ""
    return (f"Run-to-run noise unknown: the baseline has {noise.runs or 'no'} earlier run{plural}"
            f" with the same parameters and labels (at least {significance.MIN_NOISE_RUNS} are needed). Equal runs "
            "may differ by more than their intervals; repeat a run to learn by how much.")


def _finite(value: float | None) -> float | None:
    """A number for JSON: None for a missing or unbounded one, else rounded to 0.1 µs / 0.0001 units."""
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def verdict_counts(table: list[dict]) -> dict[str, int]:
    """How many cells of a compared table are better, worse, not significantly changed, not judged."""
    counts = {"better": 0, "worse": 0, "no significant change": 0, "not judged": 0}
    for endpoint in table:
        for cell in endpoint["cells"]:
            for value in cell.get("values") or []:
                if value.get("verdict"):
                    counts[value["verdict"]] += 1
    return counts


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
    rows.append(("Labels", [", ".join(f"{key}={value}" for key, value in sorted((run.labels or {}).items())) or "—"
                            for run in runs]))
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
    # An ended run's last second is partial (its users stopping): drawn, every run's line dipped at its end.
    # Left out as the comparison's own intervals leave it out (runs/evidence.py).
    ended = {run.pk for run in runs if run.status in Run.TERMINAL}
    spans = ticks.filter(run_id__in=ended).values("run_id").annotate(first=Min("tick"), last=Max("tick"))
    for span in spans:
        if evidence.partial_ends(span["first"], span["last"]):
            ticks = ticks.exclude(run_id=span["run_id"], tick=span["last"])
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
