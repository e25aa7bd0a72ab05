"""Downloadable run reports: Locust's four CSV files, a JSON document and one self-contained HTML page.

Pure functions from a `Run` (and its slot and tick rows) to str/bytes/dict: the download
views (runs/report_views.py) and `manage.py runscenario --csv` share them, so a file
downloaded from the web and one written by the CLI are the same.

CSV files
---------
Same file name suffixes and columns as Locust 2.47's `--csv` (locust/stats.py, StatsCSV and
StatsCSVFileWriter), so existing tooling keeps working:

- ``<prefix>_stats.csv``: one row per endpoint sorted by name, then "Aggregated" (empty Type).
  Median and percentiles are whole milliseconds as in Locust; "N/A" when nothing was timed.
- ``<prefix>_stats_history.csv``: per second of the run, one row per endpoint sorted by name,
  then "Aggregated" (Locust's ``--csv-full-history``). Timestamp is the go time plus the tick,
  in epoch seconds. Requests/s and Failures/s are that second's counts (Locust averages its
  last ~10 s); the percentile and "Total ..." columns are the run's cumulative figures through
  that second, as Locust writes them (RunTick.cumulative, kept by the collector each second for
  the endpoints with requests in it; an idle endpoint's row carries its previous figures).
  An endpoint appears from its first request on; "N/A" only where Locust writes it (no request
  yet). Seconds recorded before cumulative figures were kept have an Aggregated row only, with
  that second's 50/95/99th percentiles and "N/A" in the columns it did not keep.
- ``<prefix>_failures.csv``: Swarmdeck does not record when a failure was first and last seen:
  those columns are empty, as Locust writes them when it has no time.
- ``<prefix>_exceptions.csv``: "Nodes" is empty: exceptions are merged over all slots.

JSON document (``run-<id>.json``)
---------------------------------
Keys in this order. Times are ISO 8601 in UTC or null; durations in seconds; response times in
milliseconds.

- ``format``: "swarmdeck.run-report"; ``version``: 1 (bumped when a key changes meaning or goes).
- ``generated_at``: when the document was made.
- ``run``: ``id``, ``project`` {slug, name}, ``scenario`` {id, name}, ``status``, ``reason``,
  ``degraded``, ``trigger`` (manual, cli, schedule, api), ``created_by`` and
  ``stop_requested_by`` (usernames or null), ``created_at``, ``dispatched_at``, ``started_at``
  (the go time), ``stopping_at``, ``ended_at``, ``elapsed_s`` (since go, until the end or now).
- ``locustfile``: ``number``, ``sha256``, ``filename`` of the exact version that ran.
- ``params``: the frozen parameters (users, spawn_rate, duration, host, slots, user_classes,
  tags, exclude_tags, stop_timeout, ...), as stored.
- ``labels``: what the run tested, as it was labelled when it started: {key: value}, keys sorted
  ({} without labels), e.g. {"env": "staging", "sut_version": "1.4.2"}.
- ``history``: state changes in order: [{status, at, note}].
- ``slots``: [{index, status, host, worker, users, cpu, requests, error}].
- ``verdict``: "pass" or "fail" against the scenario's pass/fail criteria when the run ended, or
  null (no criteria, or not ended yet).
- ``criteria``: one entry per criterion as evaluated (runs/thresholds.py): ``criterion`` (the
  sentence), ``metric``, ``scope`` ("total" or "METHOD name"), ``operator`` ("<=" or ">="),
  ``unit``, ``limit``, ``limit_text``, ``measured`` (null: "no requests"), ``measured_text``,
  ``passed``, ``applicable`` (false: a baseline rule without earlier passing runs), ``aborted``
  (it stopped the run live), ``detail``.
- ``summary``: the "Aggregated" figures: requests, failures, failure_percent, rps,
  failures_per_s, mean_ms, min_ms, max_ms, p50_ms, p95_ms, p99_ms (nulls before any request).
- ``totals``: one row per endpoint then "Aggregated": method, name, requests, failures,
  min_ms, max_ms, mean_ms, p50, p66, p75, p80, p90, p95, p98, p99, p99.9, p99.99, p100,
  avg_size (bytes), rps, failures_per_s.
- ``endpoints_overflowed``: more names than the cap (SWARMDECK_MAX_ENDPOINTS, 500 by default); the rest
  are counted under "(other)".
- ``errors``: [{method, name, error, count}], most frequent first.
- ``exceptions``: [{message, traceback, count}], most frequent first.
- ``warnings``: [{kind, slot, host, message, at}], e.g. a load generator above 90 % CPU.
- ``series``: the per-second time series as columns of equal length: ``tick`` (seconds since
  go), ``users``, ``rps``, ``fails_per_s``, ``p50_ms``, ``p95_ms``, ``p99_ms`` (null: no timed
  request that second).
- ``endpoint_series``: {"<METHOD> <name>": {rps, fails_per_s, p50_ms, p95_ms, p99_ms}}, each a
  column aligned with ``series.tick`` (null where the endpoint had no request that second).
  Left out of the data embedded in the HTML report, which does not draw it.
- ``comparison``: the run against the newest earlier finished run of its scenario with the same
  parameters that did not fail its criteria (runs/baseline.py), or null when there is none:
  ``baseline`` (that run's id), ``level`` (of the intervals, e.g. 0.99), ``min_ms``,
  ``min_percent``, ``min_failure_pp`` (the minimum effects), ``counts`` ({better, worse, no
  significant change, not judged}) and ``endpoints``: [{method, name, figures: {fail_pct, rps,
  p50, p95, p99, mean_ms: {verdict ("better", "worse", "same": no significant change, "unknown":
  not judged), change (this run minus the baseline, in the figure's unit), interval ([low, high]
  of the change; null sides are unbounded)}}}]. How: runs/significance.py.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from datetime import UTC, timedelta
from pathlib import Path

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import mark_safe

from runs import history as run_history
from runs import labels as run_labels
from runs import services
from runs.markers import chart_markers
from runs.models import Run, RunTick
from scenarios.options import masked_params
from scenarios.secrets import masker_for_run

REPORT_FORMAT = "swarmdeck.run-report"
REPORT_VERSION = 1
AGGREGATED = "Aggregated"

# Locust's PERCENTILES_TO_REPORT as its readable column labels, with the key of the same value in a totals row.
PERCENTILE_COLUMNS = [("50%", "p50"), ("66%", "p66"), ("75%", "p75"), ("80%", "p80"), ("90%", "p90"),
                      ("95%", "p95"), ("98%", "p98"), ("99%", "p99"), ("99.9%", "p99.9"), ("99.99%", "p99.99"),
                      ("100%", "p100")]
PERCENTILE_LABELS = [label for label, _ in PERCENTILE_COLUMNS]
# The percentiles a tick keeps; the other columns of the history are "N/A".
TICK_PERCENTILES = {"50%": "p50_ms", "95%": "p95_ms", "99%": "p99_ms"}
SERIES_KEYS = ("users", "rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms")
ENDPOINT_SERIES_KEYS = ("rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms")

# Column names exactly as Locust 2.47 writes them (tests compare them with locust.stats itself).
STATS_COLUMNS = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
                 "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s",
                 *PERCENTILE_LABELS]
STATS_HISTORY_COLUMNS = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *PERCENTILE_LABELS,
                         "Total Request Count", "Total Failure Count", "Total Median Response Time",
                         "Total Average Response Time", "Total Min Response Time", "Total Max Response Time",
                         "Total Average Content Size"]
FAILURES_COLUMNS = ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]
EXCEPTIONS_COLUMNS = ["Count", "Message", "Traceback", "Nodes"]
NA = "N/A"


# -- file names ----------------------------------------------------------------------------------

def csv_filename(run: Run, kind: str) -> str:
    """run-<id>_stats.csv, run-<id>_stats_history.csv, ...: Locust's suffixes after a run prefix."""
    return f"run-{run.pk}_{kind}.csv"


def json_filename(run: Run) -> str:
    return f"run-{run.pk}.json"


def html_filename(run: Run) -> str:
    return f"run-{run.pk}-report.html"


# -- CSV -----------------------------------------------------------------------------------------

def _masked(render):
    """Whatever a report shows, with the values of the run's secrets masked (scenarios.secrets): they are masked
    when they arrive already; this catches what was stored before (an endpoint named by a URL holding one)."""
    @functools.wraps(render)
    def masked(run: Run, *args, **kwargs):
        return masker_for_run(run).data(render(run, *args, **kwargs))

    return masked


def _whole_ms(value) -> int | str:
    """Locust writes medians and percentiles as whole milliseconds."""
    return NA if value is None else int(round(value))


def _rows_or_empty_aggregate(run: Run) -> list[dict]:
    """Locust always writes the Aggregated row, zeros before the first request."""
    rows = list(run.totals or [])
    if not any(row.get("name") == AGGREGATED for row in rows):
        rows.append({"method": "", "name": AGGREGATED, "requests": 0, "failures": 0})
    return rows


def _to_csv(header: list[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@_masked
def stats_csv(run: Run) -> str:
    """`_stats.csv`: the run's totals, one row per endpoint then Aggregated."""
    def row(entry: dict) -> list:
        timed = entry.get("requests") and entry.get("p50") is not None
        return [
            "" if entry.get("name") == AGGREGATED else entry.get("method") or "",
            entry.get("name", ""), entry.get("requests", 0), entry.get("failures", 0),
            _whole_ms(entry.get("p50")) if timed else 0, float(entry.get("mean_ms") or 0), entry.get("min_ms") or 0,
            entry.get("max_ms") or 0, float(entry.get("avg_size") or 0), float(entry.get("rps") or 0),
            float(entry.get("failures_per_s") or 0),
            *[_whole_ms(entry.get(key)) if timed else NA for _, key in PERCENTILE_COLUMNS],
        ]

    return _to_csv(STATS_COLUMNS, (row(entry) for entry in _rows_or_empty_aggregate(run)))


def _ticks(run: Run, with_endpoints: bool = False) -> list[dict]:
    fields = ["tick", "seconds", *SERIES_KEYS] + (["endpoints", "cumulative"] if with_endpoints else [])
    return list(RunTick.objects.filter(run=run).order_by("tick").values(*fields))


@_masked
def stats_history_csv(run: Run) -> str:
    """`_stats_history.csv`: per second since go, one row per endpoint then Aggregated (Locust's
    `--csv-full-history`), from each tick's cumulative figures; an Aggregated row only for ticks without them."""
    ticks = _ticks(run, with_endpoints=True)
    start = int(run.started_at.timestamp()) if run.started_at else 0
    rows, requests, failures = [], 0, 0
    latest: dict[tuple[str, str], list] = {}   # an endpoint's row stays what it was until it changes
    for tick in ticks:
        if tick["cumulative"]:
            *changed, aggregated = tick["cumulative"]
            latest.update(((r[0], r[1]), r) for r in changed)
            ordered = [latest[k] for k in sorted(latest, key=lambda k: (k[1], k[0]))]
            rows.extend(_history_rows(start + tick["tick"], tick, [*ordered, aggregated]))
            continue
        # A tick is one second, so its rate is its count; a compacted one (runs/retention.py) `seconds` at that rate.
        requests += int(round((tick["rps"] or 0) * tick["seconds"]))
        failures += int(round((tick["fails_per_s"] or 0) * tick["seconds"]))
        percentiles = [_whole_ms(tick[TICK_PERCENTILES[label]]) if label in TICK_PERCENTILES else NA
                       for label in PERCENTILE_LABELS]
        rows.append([start + tick["tick"], tick["users"], "", AGGREGATED, f"{tick['rps'] or 0:2f}",
                     f"{tick['fails_per_s'] or 0:2f}", *percentiles, requests, failures, NA, NA, NA, NA, NA])
    return _to_csv(STATS_HISTORY_COLUMNS, rows)


def _history_rows(timestamp: int, tick: dict, cumulative: list[list]) -> list[list]:
    """One second's rows: that second's rates, the cumulative percentiles and totals (RunTick.cumulative)."""
    rows = []
    for method, name, count, failed, mean, low, high, size, *values in cumulative:
        current = tick if name == AGGREGATED and not method else (tick["endpoints"] or {}).get(f"{method} {name}", {})
        timed = count and values[0] is not None
        rows.append([
            timestamp, tick["users"], method, name, f"{current.get('rps') or 0:2f}",
            f"{current.get('fails_per_s') or 0:2f}",
            *([_whole_ms(value) for value in values] if count else [NA] * len(values)),
            count, failed, _whole_ms(values[0]) if timed else 0, float(mean or 0), low or 0, high or 0,
            float(size or 0),
        ])
    return rows


@_masked
def failures_csv(run: Run) -> str:
    """`_failures.csv`: failures grouped by method, name and error."""
    return _to_csv(FAILURES_COLUMNS, ([e.get("method") or "", e.get("name", ""), e.get("error", ""), e.get("count", 0),
                                       "", ""] for e in run.errors or []))


@_masked
def exceptions_csv(run: Run) -> str:
    """`_exceptions.csv`: exceptions raised in user code outside requests."""
    return _to_csv(EXCEPTIONS_COLUMNS, ([e.get("count", 0), e.get("message", ""), e.get("traceback", ""), ""]
                                        for e in run.exceptions or []))


CSV_FILES = {
    "stats": stats_csv,
    "stats_history": stats_history_csv,
    "failures": failures_csv,
    "exceptions": exceptions_csv,
}


def write_csv_files(run: Run, prefix: str) -> list[Path]:
    """PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv and PREFIX_exceptions.csv, like
    `locust --csv`."""
    written = []
    for kind, render in CSV_FILES.items():
        path = Path(f"{prefix}_{kind}.csv")
        with path.open("w", newline="", encoding="utf-8") as handle:
            handle.write(render(run))
        written.append(path)
    return written


# -- JSON ----------------------------------------------------------------------------------------

def _iso(value) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _aggregate(run: Run) -> dict:
    return next((row for row in run.totals or [] if row.get("name") == AGGREGATED), {})


def summary_figures(run: Run) -> dict:
    """The headline: what the Aggregated row says, with the failure share worked out."""
    row = _aggregate(run)
    requests, failures = row.get("requests", 0), row.get("failures", 0)
    return {
        "requests": requests, "failures": failures,
        "failure_percent": 100 * failures / requests if requests else None,
        "rps": row.get("rps"), "failures_per_s": row.get("failures_per_s"), "mean_ms": row.get("mean_ms"),
        "min_ms": row.get("min_ms"), "max_ms": row.get("max_ms"),
        "p50_ms": row.get("p50"), "p95_ms": row.get("p95"), "p99_ms": row.get("p99"),
    }


def _series(ticks: list[dict]) -> dict:
    return {"tick": [t["tick"] for t in ticks], **{key: [t[key] for t in ticks] for key in SERIES_KEYS}}


def _endpoint_series(ticks: list[dict]) -> dict:
    names = sorted({name for t in ticks for name in (t.get("endpoints") or {})})
    columns = {name: {key: [None] * len(ticks) for key in ENDPOINT_SERIES_KEYS} for name in names}
    for position, tick in enumerate(ticks):
        for name, figures in (tick.get("endpoints") or {}).items():
            for key in ENDPOINT_SERIES_KEYS:
                columns[name][key][position] = figures.get(key)
    return columns


@_masked
def report_data(run: Run, *, endpoint_series: bool = True) -> dict:
    """The JSON document described in the module docstring."""
    ticks = _ticks(run, with_endpoints=endpoint_series)
    data = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated_at": _iso(timezone.now()),
        "run": {
            "id": run.pk,
            "project": {"slug": run.project.slug, "name": run.project.name},
            "scenario": {"id": run.scenario_id, "name": run.scenario.name},
            "status": run.status, "reason": run.reason, "degraded": run.degraded, "trigger": run.trigger,
            "created_by": run.created_by.username if run.created_by else None,
            "stop_requested_by": run.stop_requested_by.username if run.stop_requested_by else None,
            "created_at": _iso(run.created_at), "dispatched_at": _iso(run.dispatched_at),
            "started_at": _iso(run.started_at), "stopping_at": _iso(run.stopping_at), "ended_at": _iso(run.ended_at),
            "elapsed_s": run.elapsed_seconds(),
        },
        "locustfile": {"number": run.version.number, "sha256": run.version.sha256, "filename": run.version.filename},
        "params": masked_params(run.params),
        "labels": run_labels.ordered(run.labels),
        "history": run.history or [],
        "verdict": run.verdict or None,
        "criteria": run.verdict_details or [],
        "slots": [{"index": s.index, "status": s.status, "host": s.host, "worker": s.worker, "users": s.users,
                   "cpu": s.cpu, "requests": s.requests, "error": s.error} for s in run.slots.all()],
        "summary": summary_figures(run),
        "totals": run.totals or [],
        "endpoints_overflowed": run.endpoints_overflowed,
        "errors": run.errors or [],
        "exceptions": run.exceptions or [],
        "warnings": run.warnings or [],
        "series": _series(ticks),
    }
    if endpoint_series:
        data["endpoint_series"] = _endpoint_series(ticks)
    data["comparison"] = _comparison_data(run)
    return data


def comparison(run: Run) -> dict | None:
    """The run against its previous comparable run (runs/baseline.py): {baseline, rule, legend, endpoints}
    with the compare page's table of the two runs, or None. Computed once per run object."""
    if "_report_comparison" not in run.__dict__:
        from runs.baseline import previous_comparable

        found = None
        base = previous_comparable(run) if run.status in Run.TERMINAL and run.totals else None
        if base is not None:
            rule = run_history.compare_rule()
            found = {"baseline": base, "rule": rule, "legend": run_history.rule_text(rule),
                     "endpoints": run_history.compare_endpoints([base, run], rule)}
        run.__dict__["_report_comparison"] = found
    return run.__dict__["_report_comparison"]


def _comparison_data(run: Run) -> dict | None:
    found = comparison(run)
    if found is None:
        return None
    rule = found["rule"]
    endpoints = []
    for endpoint in found["endpoints"]:
        mine = endpoint["cells"][1]
        if mine["missing"] or mine["no_baseline"]:
            continue
        endpoints.append({"method": endpoint["method"], "name": endpoint["name"], "figures": {
            value["key"]: {"verdict": value["outcome"], "change": value["change"], "interval": value["interval"]}
            for value in mine["values"] if value["outcome"]}})
    return {"baseline": found["baseline"].pk, "level": rule.level, "min_ms": rule.min_ms,
            "min_percent": rule.min_relative * 100, "min_failure_pp": rule.min_failure_pp,
            "counts": run_history.verdict_counts(found["endpoints"]), "endpoints": endpoints}


# -- HTML ----------------------------------------------------------------------------------------

def _static_text(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise FileNotFoundError(f"Static file {path} is missing: the HTML report inlines it.")
    return Path(found).read_text(encoding="utf-8")


_CLOSING_TAG = re.compile(r"<(/(?:script|style)|!--)", re.IGNORECASE)


def _inline(text: str) -> str:
    """Asset text safe inside <script> or <style>: nothing in it may end the element early.

    "<\\/script" means "</script" in a JS string or regex and in a CSS string, but the HTML
    parser does not see a closing tag. The vendored files contain none today; this keeps an
    upgrade from silently breaking the report.
    """
    return mark_safe(_CLOSING_TAG.sub(lambda m: "<\\" + m.group(1), text))


def _inline_css(*paths: str) -> str:
    return _inline("\n".join(_static_text(path) for path in paths))


def _inline_js(*paths: str) -> str:
    return _inline("\n;\n".join(_static_text(path) for path in paths))


def _ms(value) -> str:
    """Response times as people read them: sub-millisecond precision only where it matters."""
    if value is None:
        return "–"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _rate(value) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _display_row(row: dict) -> dict:
    return {
        "aggregate": row.get("name") == AGGREGATED, "method": row.get("method") or "", "name": row.get("name", ""),
        "requests": f"{row.get('requests', 0):,}", "failures": f"{row.get('failures', 0):,}",
        "p50": _ms(row.get("p50")), "p90": _ms(row.get("p90")), "p95": _ms(row.get("p95")),
        "p99": _ms(row.get("p99")), "mean": _ms(row.get("mean_ms")), "min": _ms(row.get("min_ms")),
        "max": _ms(row.get("max_ms")), "avg_size": f"{row.get('avg_size') or 0:,.0f}", "rps": _rate(row.get("rps")),
        "failures_per_s": _rate(row.get("failures_per_s")),
    }


def _clock(seconds) -> str:
    if seconds is None:
        return "–"
    return str(timedelta(seconds=round(seconds)))


def _history(run: Run) -> list[dict]:
    """State changes with their times parsed, so the report shows them like every other time."""
    rows = []
    for change in run.history or []:
        raw = str(change.get("at") or "")
        rows.append({"status": change.get("status", ""), "note": change.get("note", ""),
                     "at": parse_datetime(raw) if raw else None, "raw_at": raw})
    return rows


@_masked
def html_report(run: Run) -> str:
    """One HTML file that opens offline: styles, uPlot, the chart helper and the data are all inline."""
    data = report_data(run, endpoint_series=False)
    data["markers"] = chart_markers(run)   # drawn on the charts (runs/markers.py); not in the JSON download
    summary = data["summary"]
    headline = {
        "requests": f"{summary['requests']:,}", "rps": _rate(summary["rps"]),
        "failures": f"{summary['failures']:,}",
        "failure_percent": "–" if summary["failure_percent"] is None else f"{summary['failure_percent']:.2f} %",
        "p50": _ms(summary["p50_ms"]), "p95": _ms(summary["p95_ms"]), "p99": _ms(summary["p99_ms"]),
    }
    return render_to_string("runs/report_standalone.html", {
        "run": run, "project": run.project, "scenario": run.scenario, "version": run.version, "data": data,
        "comparison": comparison(run), "metrics": run_history.METRICS,
        "headline": headline, "rows": [_display_row(row) for row in run.totals or []],
        "slots": list(run.slots.all()), "history": _history(run), "elapsed": _clock(run.elapsed_seconds()),
        "planned": _clock(run.duration) if run.duration else "until stopped",
        "generated_at": timezone.now(), "max_endpoints": services.max_endpoints(),
        "css": _inline_css("vendor/pico/pico.min.css", "vendor/uplot/uPlot.min.css", "swarmdeck/app.css"),
        "js": _inline_js("vendor/uplot/uPlot.iife.min.js", "swarmdeck/charts.js"),
    })
