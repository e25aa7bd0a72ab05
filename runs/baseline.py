"""Baseline rule 2.0: is a run's p95 significantly worse than that of the last N passing runs with the
same parameters?

The criterion (Threshold.Metric.P95_BASELINE, "p95 compared with recent passing runs") is judged when
the run ends, for its scope: one endpoint ("GET /cart"), or every endpoint and Aggregated (scope
total). Rule, for each endpoint in scope:

- The baseline runs are the scenario's last `baseline_runs` finished runs with verdict pass and the
  same parameters: users, spawn rate, slots, duration, host, the locustfile's options, user classes,
  tags and excluded tags (and no users changed while running, or the same change). Environment
  variables, labels and the locustfile version may differ: a new build of the system under test, or a
  new locustfile, is what the rule is there to judge.
- The endpoint regressed when its p95 is **worse** than in *each* baseline run that measured it, by
  runs.significance's rule: the interval of the difference (order-statistic intervals of both p95s,
  at SWARMDECK_COMPARE_LEVEL) excludes zero, and the change is at least SWARMDECK_COMPARE_MIN_MS and
  the larger of the criterion's value (% worse allowed) and SWARMDECK_COMPARE_MIN_PERCENT. One slow
  baseline run is enough to shield a run from a false alarm; a regressed run fails and never becomes
  a baseline itself.
- The verdict names every endpoint that regressed and by how much: its change against the closest
  baseline run (the smallest change) with that change's interval.

Not applicable (passes) until an earlier passing run with the same parameters and a stored histogram
measured the scope. Entries written before this rule (a median p95 plus X %) keep their own fields:
pages and reports show any entry from its generic fields (criterion, measured_text, limit_text,
detail), and the new fields (`baseline_runs`, `regressions`) are only added.
"""

from __future__ import annotations

import json

from runs import evidence, significance, thresholds

SAME_PARAMETERS = ("users", "spawn_rate", "slots", "duration", "host", "options", "user_classes", "tags",
                   "exclude_tags", "live_users")
SCAN_LIMIT = 500   # passing runs looked at, newest first, to find N with the same parameters


def parameters_key(params: dict) -> str:
    """What makes two runs' loads the same, as one comparable string."""
    params = params or {}
    normal = {
        "users": params.get("users"), "spawn_rate": float(params.get("spawn_rate") or 0),
        "slots": int(params.get("slots") or 1), "duration": int(params.get("duration") or 0),
        "host": params.get("host") or "", "options": params.get("options") or {},
        "user_classes": sorted(params.get("user_classes") or []), "tags": sorted(params.get("tags") or []),
        "exclude_tags": sorted(params.get("exclude_tags") or []), "live_users": params.get("live_users"),
    }
    return json.dumps(normal, sort_keys=True, default=str)


def candidates(run, limit: int) -> list:
    """The scenario's last `limit` finished passing runs with the run's parameters, newest first."""
    from runs.models import Run

    passing = (Run.objects.filter(scenario_id=run.scenario_id, status=Run.Status.FINISHED, verdict=thresholds.PASS)
               .exclude(pk=run.pk).order_by("-ended_at", "-id"))
    return equal_runs(passing, run.params, limit)


def equal_runs(runs, params: dict, limit: int, labels: dict | None = None) -> list:
    """The first `limit` runs of the queryset `runs` (in its order, SCAN_LIMIT looked at) with these parameters,
    and these labels when given, loaded with what a comparison reads."""
    from runs.models import Run

    wanted = parameters_key(params)
    ids = [pk for pk, their_params, their_labels in runs.values_list("pk", "params", "labels")[:SCAN_LIMIT]
           if parameters_key(their_params) == wanted and (labels is None or (their_labels or {}) == labels)][:limit]
    found = {r.pk: r for r in Run.objects.filter(pk__in=ids).only("pk", "status", "params", "totals", "stats_blob",
                                                                    "stats_updated_at")}
    return [found[pk] for pk in ids if pk in found]


def in_scope(keys, endpoint: str) -> list[evidence.Key]:
    """The endpoint keys a criterion judges: the one named, or all of them (Aggregated included) for the total."""
    if not endpoint:
        return list(keys)
    return [key for key in keys if key != evidence.AGGREGATED_KEY and f"{key[0]} {key[1]}".strip() == endpoint]


def label(key: evidence.Key) -> str:
    return "total (Aggregated)" if key == evidence.AGGREGATED_KEY else f"{key[0]} {key[1]}".strip()


def judge(criterion, current: dict, baselines: list[tuple[int, dict]], rule: significance.Rule) -> dict:
    """The criterion's verdict fields from plain data (pure): `current` and each baseline run's
    samples ({key: EndpointSample}), baselines as (run id, samples), newest first."""
    allowed = max(rule.min_relative, (criterion.value or 0) / 100)
    strict = significance.Rule(level=rule.level, min_ms=rule.min_ms, min_relative=allowed,
                               min_failure_pp=rule.min_failure_pp)
    level = f"{rule.level * 100:g}%"
    regressions, compared_against, judged, noisy = [], set(), 0, False
    for key in in_scope(current, criterion.endpoint):
        mine = significance.estimates(current[key], rule.level)["p95"]
        if mine.value is None:
            continue
        theirs_all = [(run_id, significance.estimates(samples.get(key), rule.level)["p95"])
                      for run_id, samples in baselines]
        # The baseline runs are equal runs: how much they differ beyond their own intervals is run-to-run
        # noise (runs/significance.py), which widens both sides.
        bounded = [theirs for _, theirs in theirs_all if theirs.bounded]
        sd = significance.between_run_sd([e.value for e in bounded], [significance.within_sd(e) for e in bounded])
        noisy = noisy or sd > 0
        mine = significance.with_run_noise(mine, sd, len(bounded), "ms")
        verdicts = []
        for run_id, theirs in theirs_all:
            if theirs.value is not None:
                theirs = significance.with_run_noise(theirs, sd, len(bounded), "ms")
                verdicts.append((run_id, significance.judge("p95", theirs, mine, strict)))
        if not verdicts:
            continue
        judged += 1
        compared_against.update(run_id for run_id, _ in verdicts)
        if all(v.outcome == significance.WORSE for _, v in verdicts):
            run_id, closest = min(verdicts, key=lambda item: item[1].change)
            regressions.append({
                "endpoint": label(key), "p95_ms": round(mine.value, 3),
                "baseline_p95_ms": round(closest.base.value, 3), "change_ms": round(closest.change, 3),
                "change_pct": round(100 * closest.change / closest.base.value, 1) if closest.base.value else None,
                "low_ms": round(closest.low, 3), "high_ms": round(closest.high, 3), "against": run_id,
                "runs": [r for r, _ in verdicts],
            })
    ids = [run_id for run_id, _ in baselines if run_id in compared_against]
    runs_text = ", ".join(f"#{run_id}" for run_id in ids)
    if not judged:
        return {"applicable": False, "passed": True, "limit": None, "limit_text": "–", "baseline_runs": [],
                "regressions": [],
                "detail": "Not applicable: no earlier passing run of this scenario with the same parameters "
                          "(users, spawn rate, slots, duration, host, options) measured "
                          f"{thresholds.scope_label(criterion.endpoint)}."}
    if regressions:
        parts = [f"{r['endpoint']} p95 {r['p95_ms']:.2f} ms, {r['change_ms']:+.2f} ms"
                 + (f" ({r['change_pct']:+.1f}%)" if r["change_pct"] is not None else "")
                 + f" against #{r['against']} ({level} interval {r['low_ms']:+.2f} … {r['high_ms']:+.2f} ms)"
                 for r in regressions]
        detail = (f"Significantly worse than each of run{'s' if len(ids) != 1 else ''} {runs_text}: "
                  + "; ".join(parts) + ".")
    else:
        detail = (f"No endpoint significantly worse than each of run{'s' if len(ids) != 1 else ''} {runs_text} "
                  f"({judged} judged; {level} intervals, minimum effect {rule.min_ms:g} ms and {allowed * 100:g}%).")
    if noisy:
        detail += " The intervals include how much those runs differ from one another (run-to-run noise)."
    return {"applicable": True, "passed": not regressions, "limit": None, "limit_text": f"runs {runs_text}",
            "baseline_runs": ids, "regressions": regressions, "detail": detail}


def evaluate(criterion, run, rule: significance.Rule | None = None) -> dict:
    """The criterion's entry (runs/thresholds.py's shape, plus baseline_runs and regressions) for a run that ended."""
    from runs.history import compare_rule

    rule = rule or compare_rule()
    current = evidence.samples(run)
    baselines = [(other.pk, evidence.samples(other, in_scope(current, criterion.endpoint)))
                 for other in candidates(run, criterion.baseline_runs)]
    return judge(criterion, current, baselines, rule)


def previous_comparable(run):
    """The run a report compares with: the newest earlier finished run of the scenario with the same
    parameters that did not fail its criteria (passing, or judged by none), or None."""
    from runs.models import Run

    wanted = parameters_key(run.params)
    earlier = (Run.objects.filter(scenario_id=run.scenario_id, status=Run.Status.FINISHED, pk__lt=run.pk)
               .exclude(verdict=thresholds.FAIL).order_by("-pk"))
    for pk, params in earlier.values_list("pk", "params")[:SCAN_LIMIT]:
        if parameters_key(params) == wanted:
            return Run.objects.select_related("version").get(pk=pk)
    return None
