"""Plain-data views of a run for the CLI (JSON summary, Locust's console tables).

The CSV files (`runscenario --csv`) and the downloads live in runs/reports.py.
"""

from runs import labels as run_labels
from runs.models import Run
from runs.reports import PERCENTILE_COLUMNS


def summary(run: Run) -> dict:
    """The --json document of `runscenario`."""
    rows = run.totals or []
    aggregate = next((r for r in rows if r.get("name") == "Aggregated"), {})

    def figures(row):
        return {"requests": row.get("requests", 0), "failures": row.get("failures", 0), "rps": row.get("rps"),
                "p50_ms": row.get("p50"), "p95_ms": row.get("p95"), "p99_ms": row.get("p99")}

    return {
        "run": run.pk,
        "status": run.status,
        "reason": run.reason,
        "ended_by": run.ended_by,
        "verdict": run.verdict or None,
        "criteria": run.verdict_details or [],
        "labels": run_labels.ordered(run.labels),
        "totals": {**figures(aggregate), "min_ms": aggregate.get("min_ms"), "max_ms": aggregate.get("max_ms")},
        "endpoints": [{"method": r.get("method"), "name": r.get("name"), **figures(r)}
                      for r in rows if r.get("name") != "Aggregated"],
        "slots": [{"index": s.index, "host": s.host, "state": s.status, "requests": s.requests}
                  for s in run.slots.all()],
    }


def _fmt(value, digits=0):
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if digits else f"{round(value)}"


def summary_table(run: Run) -> str:
    """The two tables Locust prints at the end of a headless run."""
    rows = run.totals or []
    lines = [f"{'Type':<8} {'Name':<40} {'# reqs':>9} {'# fails':>14} | {'Avg':>7} {'Min':>7} {'Max':>7} {'Med':>7} "
             f"| {'req/s':>8} {'failures/s':>10}", "-" * 128]
    for row in rows:
        if row.get("name") == "Aggregated":
            lines.append("-" * 128)
        requests, failures = row.get("requests", 0), row.get("failures", 0)
        share = f"{failures}({100 * failures / requests:.2f}%)" if requests else f"{failures}(0.00%)"
        lines.append(
            f"{(row.get('method') or ''):<8} {row.get('name', '')[:40]:<40} {requests:>9} {share:>14} | "
            f"{_fmt(row.get('mean_ms')):>7} {_fmt(row.get('min_ms')):>7} {_fmt(row.get('max_ms')):>7} "
            f"{_fmt(row.get('p50')):>7} | {_fmt(row.get('rps'), 2):>8} {_fmt(row.get('failures_per_s'), 2):>10}")
    lines += ["", "Response time percentiles (approximated)",
              f"{'Type':<8} {'Name':<40} " + " ".join(f"{label:>6}" for label, _ in PERCENTILE_COLUMNS)
              + f" {'# reqs':>8}",
              "-" * 128]
    for row in rows:
        lines.append(f"{(row.get('method') or ''):<8} {row.get('name', '')[:40]:<40} "
                     + " ".join(f"{_fmt(row.get(key)):>6}" for _, key in PERCENTILE_COLUMNS)
                     + f" {row.get('requests', 0):>8}")
    return "\n".join(lines)



def criteria_table(run: Run) -> str:
    """The verdict and each criterion's measured value against its limit, for the console."""
    if not run.verdict:
        return ""
    lines = [f"Verdict: {run.verdict.upper()}", f"{'Result':<8} {'Criterion':<70} {'Measured':>14} {'Limit':>14}",
             "-" * 110]
    for entry in run.verdict_details or []:
        result = ("ABORTED" if entry.get("aborted") else "n/a" if not entry.get("applicable")
                  else "pass" if entry.get("passed") else "FAIL")
        lines.append(f"{result:<8} {entry.get('criterion', '')[:70]:<70} {entry.get('measured_text', ''):>14} "
                     f"{entry.get('limit_text', ''):>14}")
        if entry.get("detail") and (entry.get("aborted") or not entry.get("passed") or not entry.get("applicable")):
            lines.append(f"{'':<8} {entry['detail']}")
    return "\n".join(lines)
