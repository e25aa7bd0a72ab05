"""Pass/fail criteria: a run's totals checked against its scenario's thresholds.

The evaluation functions are pure: they take totals rows (as the collector stores them: one
dict per endpoint, "Aggregated" last) and criteria (`Threshold` rows, or anything with the
same attributes) and return plain dicts, the entries stored in `Run.verdict_details`:

    {id, criterion, metric, scope, operator, unit, limit, limit_text, measured, measured_text,
     passed, applicable, aborted, detail}

The few functions that read the database (`evaluate_run`, `known_endpoints`) are at the end.

Rules, chosen here so that a verdict never passes by accident:
- Response times (ms) and the failure ratio (%) must be <= the limit; RPS must be >= it.
- A criterion whose scope recorded no requests (an endpoint missing from the totals, or no
  request at all) fails with measured "no requests": what cannot be checked does not pass.
  Live, such a criterion does not abort: the endpoint may simply not have been hit yet.
- The baseline rule ("p95 not significantly worse than each of the last N passing runs with the
  same parameters", runs/baseline.py, which also adds `baseline_runs` and `regressions` to its
  entry) is "not applicable", and does not fail, until the scenario has at least one earlier
  finished run with verdict pass and the same parameters that measured the scope. Runs from
  before the scenario had criteria have no verdict and never count as passing. Entries stored
  by the earlier rule (median p95 + X%) stay as they were.
- A criterion with a window (`window_seconds` > 0) judges rolling windows of the run instead of
  its totals (runs/windows.py): at the end, for `any` its worst full window, for `last` the last
  full window before the end; live, the newest full window. A run without a full window fails it.
  The baseline rule has no window.
- Disabled criteria are not evaluated. The verdict is "fail" when an applicable criterion
  failed or one aborted the run, "pass" otherwise, and "" when there were no criteria.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runs.windows import Result, Tracker

AGGREGATED = "Aggregated"
PASS, FAIL = "pass", "fail"

P50, P95, P99, MEAN, FAILURE_RATIO, RPS, P95_BASELINE = (
    "p50", "p95", "p99", "mean", "failure_ratio", "rps", "p95_baseline")
RESPONSE_TIMES = (P50, P95, P99, MEAN)
# How each metric is named in sentences ("failure ratio 34.2% > 20%") and its unit.
NAMES = {P50: "p50", P95: "p95", P99: "p99", MEAN: "average response time", FAILURE_RATIO: "failure ratio",
         RPS: "RPS", P95_BASELINE: "p95"}
UNITS = {P50: "ms", P95: "ms", P99: "ms", MEAN: "ms", FAILURE_RATIO: "%", RPS: "/s", P95_BASELINE: "ms"}
NO_REQUESTS = "no requests"


def operator(metric: str) -> str:
    """RPS is a floor; everything else is a ceiling."""
    return ">=" if metric == RPS else "<="


def scope_label(endpoint: str) -> str:
    return endpoint or "total"


def format_value(value: float | None, unit: str) -> str:
    """Measured figures as people read them: '812.3 ms', '34.2%', '95.1/s'."""
    if value is None:
        return NO_REQUESTS
    if unit == "ms":
        text = f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:,.0f}"
        return f"{text} ms"
    if unit == "%":
        return f"{value:.2f}%" if 0 < value < 1 else f"{value:.1f}%"
    return f"{value:,.1f}/s"


def format_limit(value: float, unit: str) -> str:
    """Limits as the user typed them: '500 ms', '20%', '100/s'."""
    text = f"{value:g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return f"{text} ms" if unit == "ms" else f"{text}{unit}"


def describe(criterion) -> str:
    """The criterion as a sentence, e.g. 'p95 of GET /cart ≤ 500 ms'."""
    scope = scope_label(criterion.endpoint)
    if criterion.metric == P95_BASELINE:  # runs/baseline.py
        runs = criterion.baseline_runs
        by = f" (by more than {criterion.value:g}%)" if criterion.value else ""
        return (f"p95 of {scope} not significantly worse{by} than each of the last {runs} passing "
                f"run{'s' if runs != 1 else ''} with the same parameters")
    sign = "≥" if operator(criterion.metric) == ">=" else "≤"
    return (f"{NAMES[criterion.metric]} of {scope}{window_phrase(criterion)} {sign} "
            f"{format_limit(criterion.value, UNITS[criterion.metric])}")


def find_row(totals: list[dict], endpoint: str) -> dict | None:
    """The totals row of a scope: the Aggregated row for "", else the row whose "METHOD name" matches."""
    for row in totals or []:
        method, name = row.get("method") or "", row.get("name") or ""
        aggregate = name == AGGREGATED and not method
        if (not endpoint and aggregate) or (endpoint and not aggregate and f"{method} {name}".strip() == endpoint):
            return row
    return None


def measure(metric: str, row: dict | None) -> float | None:
    """The figure a criterion checks in one totals row; None when the scope recorded no requests."""
    if not row or not row.get("requests"):
        return None
    if metric == FAILURE_RATIO:
        return 100.0 * (row.get("failures") or 0) / row["requests"]
    if metric == RPS:
        return float(row.get("rps") or 0.0)
    if metric == MEAN:
        value = row.get("mean_ms")
    else:  # p50, p95, p99 and the baseline rule's p95
        value = row.get(P95 if metric == P95_BASELINE else metric)
    return None if value is None else float(value)


def evaluate_one(criterion, totals: list[dict], baseline: dict | None = None) -> dict:
    """One criterion against the totals. `baseline`: the baseline rule's verdict fields (runs/baseline.py)."""
    metric = criterion.metric
    unit = UNITS[metric]
    measured = measure(metric, find_row(totals, criterion.endpoint))
    entry = {
        "id": getattr(criterion, "pk", None), "criterion": describe(criterion), "metric": metric,
        "scope": scope_label(criterion.endpoint), "operator": operator(metric), "unit": unit,
        "limit": criterion.value, "limit_text": format_limit(criterion.value, unit),
        "measured": measured, "measured_text": format_value(measured, unit),
        "passed": False, "applicable": True, "aborted": False, "detail": "",
    }
    if metric == P95_BASELINE:  # judged on the runs' histograms by runs/baseline.py, which gives its fields
        entry.update(limit=None, limit_text="–", passed=True, applicable=False,
                     detail="Not applicable: no earlier passing run of this scenario with the same parameters "
                            "measured it.")
        entry.update(baseline or {})
        return entry
    limit = entry["limit"]
    if measured is None:
        entry["detail"] = entry["detail"] or f"{scope_label(criterion.endpoint)} recorded no requests."
    else:
        entry["passed"] = measured >= limit if entry["operator"] == ">=" else measured <= limit
    return entry


def evaluate(criteria, totals: list[dict], baselines: dict | None = None, windows: Tracker | None = None,
             started_at: datetime | None = None) -> list[dict]:
    """Every enabled criterion against the totals; `baselines` maps a baseline criterion's id to its runs.
    Windowed criteria are judged on `windows` (the run's tracker; None: none seen), `started_at` the go time."""
    baselines = baselines or {}
    return [evaluate_windowed(c, windows, started_at) if windowed(c)
            else evaluate_one(c, totals, baselines.get(getattr(c, "pk", None))) for c in criteria
            if getattr(c, "enabled", True)]


def verdict_of(entries: list[dict]) -> str:
    if not entries:
        return ""
    failed = any(e.get("aborted") or (e.get("applicable") and not e.get("passed")) for e in entries)
    return FAIL if failed else PASS


def broken(criteria, totals: list[dict], elapsed: float) -> list[dict]:
    """Abort-on-fail criteria broken now, past their grace period, with a measured value (live check).

    The baseline rule is checked at the end only.
    """
    found = []
    for criterion in criteria:
        if not (getattr(criterion, "enabled", True) and criterion.abort_on_fail) or criterion.metric == P95_BASELINE:
            continue
        if windowed(criterion):  # checked on its window: broken_windows
            continue
        if elapsed < (criterion.grace_seconds or 0):
            continue
        entry = evaluate_one(criterion, totals)
        if entry["measured"] is not None and not entry["passed"]:
            entry.update(aborted=True, elapsed_s=round(elapsed, 1), detail=f"Aborted the run after {elapsed:.0f} s.")
            found.append(entry)
    return found


def abort_reason(entry: dict) -> str:
    """'Aborted: failure ratio 34.2% > 20% after 31 s' (and 'of GET /x' for an endpoint)."""
    if entry.get("window"):
        return window_abort_reason(entry)
    broke = "<" if entry["operator"] == ">=" else ">"
    scope = "" if entry["scope"] == "total" else f" of {entry['scope']}"
    return (f"Aborted: {NAMES[entry['metric']]}{scope} {entry['measured_text']} {broke} {entry['limit_text']} "
            f"after {entry.get('elapsed_s', 0):.0f} s")


def merge_aborted(entries: list[dict], aborted: list[dict]) -> list[dict]:
    """The end-of-run entries with the live aborts in place: an aborted criterion stays failed with
    the value that broke it, even if the final totals look better (the run was cut short)."""
    by_id = {e.get("id"): e for e in aborted}
    merged = []
    for entry in entries:
        live = by_id.pop(entry.get("id"), None)
        if live is None:
            merged.append(entry)
            continue
        at_end = entry["measured_text"]
        merged.append({**live, "detail": f"{live.get('detail', '')} At the end: {at_end}.".strip()})
    merged.extend(by_id.values())  # criteria deleted or disabled since the abort still count
    return merged


# -- rolling windows (runs/windows.py) ------------------------------------------------------------

def windowed(criterion) -> bool:
    """Does the criterion judge rolling windows rather than the run's totals? (Never the baseline rule.)"""
    return bool(getattr(criterion, "window_seconds", 0)) and criterion.metric != P95_BASELINE


def window_phrase(criterion) -> str:
    """' over the last 60 s', ' in any 30 s window', or '' for the whole run."""
    if not windowed(criterion):
        return ""
    seconds = criterion.window_seconds
    return f" in any {seconds} s window" if criterion.window == "any" else f" over the last {seconds} s"


def clock(started_at: datetime | None, second: float) -> str:
    """The wall-clock time (HH:MM:SS, the site's time zone) of a second since the run's go."""
    if started_at is None:
        return f"{second:g} s"
    from django.utils import timezone

    return timezone.localtime(started_at + timedelta(seconds=second)).strftime("%H:%M:%S")


def span(result: Result, started_at: datetime | None) -> str:
    """'10:42:13–10:42:23' of a window."""
    return f"{clock(started_at, result.start)}–{clock(started_at, result.end)}"


def _window_fields(criterion, result: Result | None, started_at: datetime | None) -> dict:
    """The entry's "window": its length and kind and, once measured, its seconds and times."""
    window = {"seconds": criterion.window_seconds, "kind": criterion.window}
    if result is not None:
        window.update(start_s=result.start, end_s=result.end, requests=result.requests)
        if started_at is not None:
            window.update(start=(started_at + timedelta(seconds=result.start)).isoformat(),
                          end=(started_at + timedelta(seconds=result.end)).isoformat())
    return window


def window_entry(criterion, result: Result | None, started_at: datetime | None) -> dict:
    """A windowed criterion's entry for one window (None: no full window), detail not yet said."""
    entry = evaluate_one(criterion, [])  # the common fields, measured "no requests"
    entry["window"] = _window_fields(criterion, result, started_at)
    if result is not None and result.value is not None:
        entry.update(measured=result.value, measured_text=format_value(result.value, entry["unit"]),
                     passed=(result.value >= entry["limit"] if entry["operator"] == ">="
                             else result.value <= entry["limit"]))
    return entry


def evaluate_windowed(criterion, windows: Tracker | None, started_at: datetime | None = None) -> dict:
    """A windowed criterion when the run ended: `any` its worst full window, `last` the last full
    window before the end; a run without a full window fails it (what cannot be checked does not pass)."""
    result = windows.final(criterion.pk) if windows is not None else None
    entry = window_entry(criterion, result, started_at)
    seconds = criterion.window_seconds
    if result is None:
        entry["measured_text"] = f"no full {seconds} s window"
        entry["detail"] = f"No full {seconds} s window: the run was not watched for {seconds} whole seconds."
        return entry
    which = f"Worst {seconds} s window" if criterion.window == "any" else f"Last full {seconds} s window before the end"
    detail = f"{which}: {span(result, started_at)} (seconds {result.start}–{result.end} of the run)"
    if result.value is None:
        detail += f", without requests{' in any window' if criterion.window == 'any' else ''}"
    first = windows.first_second(criterion.pk)
    if first:
        detail += f"; windows from second {first} on only (the collector restarted, or the criterion is newer)"
    entry["detail"] = detail + "."
    return entry


def broken_windows(criteria, windows: Tracker, elapsed: float, started_at: datetime | None) -> list[dict]:
    """Windowed abort-on-fail criteria whose newest full window breaks them (live check).

    A window that begins inside the grace period is not checked: ramp-up seconds never abort.
    """
    found = []
    for criterion in criteria:
        if not (getattr(criterion, "enabled", True) and criterion.abort_on_fail and windowed(criterion)):
            continue
        result = windows.latest(criterion.pk)
        if result is None or result.value is None or result.start < (criterion.grace_seconds or 0):
            continue
        entry = window_entry(criterion, result, started_at)
        if not entry["passed"]:
            entry.update(aborted=True, elapsed_s=round(elapsed, 1),
                         detail=f"Aborted the run after {elapsed:.0f} s: the {criterion.window_seconds} s window "
                                f"{span(result, started_at)} (seconds {result.start}–{result.end} of the run).",
                         window_text=span(result, started_at))
            found.append(entry)
    return found


def window_abort_reason(entry: dict) -> str:
    """'Aborted: p95 of the last 10 s was 104.0 ms > 50 ms (10:42:13–10:42:23)'."""
    broke = "<" if entry["operator"] == ">=" else ">"
    scope = " of" if entry["scope"] == "total" else f" of {entry['scope']} over"
    return (f"Aborted: {NAMES[entry['metric']]}{scope} the last {entry['window']['seconds']} s was "
            f"{entry['measured_text']} {broke} {entry['limit_text']} ({entry.get('window_text', '')})")


# -- the database side ---------------------------------------------------------------------------

def evaluate_run(run, windows: Tracker | None = None) -> tuple[str, list[dict]]:
    """(verdict, entries) of a run that ended, against its scenario's criteria as they are now.

    The run's `verdict_details` may already hold entries of criteria that aborted it live.
    `windows`: the collector's rolling windows of the run, for windowed criteria.
    """
    from runs import baseline
    from runs.models import Threshold

    criteria = list(Threshold.objects.filter(scenario_id=run.scenario_id, enabled=True))
    baselines = {c.pk: baseline.evaluate(c, run) for c in criteria if c.metric == P95_BASELINE}
    entries = evaluate(criteria, run.totals or [], baselines, windows, run.started_at)
    entries = merge_aborted(entries, [e for e in run.verdict_details or [] if e.get("aborted")])
    return verdict_of(entries), entries


def known_endpoints(scenario, runs: int = 5) -> list[str]:
    """'METHOD name' of every endpoint the scenario's last finished runs recorded: for the form's hints."""
    from runs.models import Run

    names = set()
    for totals in (scenario.runs.filter(status__in=[Run.Status.FINISHED, Run.Status.FAILED])
                   .order_by("-created_at").values_list("totals", flat=True)[:runs]):
        for row in totals or []:
            if not (row.get("name") == AGGREGATED and not row.get("method")):
                names.add(f"{row.get('method') or ''} {row.get('name')}".strip())
    return sorted(names)
