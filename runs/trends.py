"""Trends of a scenario: the headline figures of its last N finished runs, like for like.

A trend may keep parameters fixed ("only runs with 50 users and 2 slots") and require labels
("only env=staging"): runs/labels.py filters those. It says in words which runs it shows, warns
when the runs it shows were started with different parameters, offers the parameter sets and
labels the scenario's runs have, and marks on its charts where the locustfile version or the
labels changed from one run to the next.

Functions here take a scenario the view has already fetched for the user; none checks access.
"""

from __future__ import annotations

from collections import Counter

from django import forms

from runs import labels as run_labels
from runs.history import failure_percent
from runs.models import Run
from scenarios.durations import format_duration
from scenarios.forms import DurationField

TREND_DEFAULT = 20
TREND_CHOICES = (10, 20, 50, 100)
# Parameters a trend can keep fixed, in the order they are named: the key in Run.params (and in ?users=50).
PARAMETERS = ("users", "slots", "spawn_rate", "duration", "host")
# Runs read (newest first) for the parameter sets and labels the page offers.
GROUP_SCAN = 500
MAX_GROUPS = 12
MARKER_LABEL_LENGTH = 32
PER_RUN_MINIMUM = 4


def parse_trend_limit(raw: str | None) -> tuple[int, str]:
    """N for the trends, and a message when the asked value was unusable."""
    if not raw:
        return TREND_DEFAULT, ""
    if raw.isdigit() and 2 <= int(raw) <= max(TREND_CHOICES):
        return int(raw), ""
    top = max(TREND_CHOICES)
    return TREND_DEFAULT, f"“{raw}” is not a number of runs between 2 and {top}; showing {TREND_DEFAULT}."


class TrendFilterForm(forms.Form):
    """The GET filters of a trend: parameters the runs must have been started with, and labels (?label=k=v,
    repeatable). Invalid ones are named and dropped; the valid ones still apply."""

    users = forms.IntegerField(required=False, min_value=1, label="Users",
                               error_messages={"invalid": "Users is a whole number, e.g. 50."})
    slots = forms.IntegerField(required=False, min_value=1, label="Slots",
                               error_messages={"invalid": "Slots is a whole number, e.g. 2."})
    spawn_rate = forms.FloatField(required=False, min_value=0.01, label="Spawn rate",
                                  error_messages={"invalid": "The spawn rate is a number of users per second, e.g. 5."})
    duration = DurationField(required=False, label="Duration")
    host = forms.CharField(required=False, max_length=500, label="Host")

    def __init__(self, data):
        super().__init__(data)
        values = data.getlist("label") if hasattr(data, "getlist") else []
        self.label_filters, self.label_problems = run_labels.parse_filters(values)

    def problems(self) -> list[str]:
        return [f"{self.fields[name].label}: {error}" for name, errors in self.errors.items() for error in errors] \
            + self.label_problems

    def parameters(self) -> dict:
        """The parameters asked for, by their key in Run.params (call is_valid() first)."""
        data = getattr(self, "cleaned_data", {})
        return {name: data[name] for name in PARAMETERS if data.get(name) not in (None, "")}


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_parameter(name: str, value) -> str:
    """"50 users", "2 slots", "5 users/s", "5m", "host http://shop.test"."""
    if name == "users":
        return f"{value} user{'s' if value != 1 else ''}"
    if name == "slots":
        return f"{value} slot{'s' if value != 1 else ''}"
    if name == "spawn_rate":
        return f"{_number(value)} users/s"
    if name == "duration":
        return format_duration(int(value)) if value else "until stopped"
    return f"host {value}" if value else "the locustfile's host"


def conditions(parameters: dict, label_filters: list) -> str:
    """The filters in words: "50 users, 2 slots and env=staging" ("" without filters)."""
    words = [describe_parameter(name, parameters[name]) for name in PARAMETERS if name in parameters]
    words += [f"{key}={value}" for key, value in label_filters]
    if len(words) < 2:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def description(limit: int, count: int, parameters: dict, label_filters: list) -> str:
    """What the trend shows, in words: "the last 20 finished runs with 50 users, 2 slots and env=staging"."""
    shown = f"the last {limit} finished runs" if count >= limit else "no finished runs" if count == 0 else \
        f"all {count} finished runs" if count != 1 else "the only finished run"
    words = conditions(parameters, label_filters)
    return f"{shown} with {words}" if words else shown


def empty_state(trend: dict, finished: int, label_filters: list) -> dict:
    """What the page says instead of charts, below 2 runs to draw: {title, text, widen}. `finished` counts all
    the scenario's finished runs, filtered or not; `widen`: clearing the filters would show more runs."""
    count, words = trend["count"], conditions(trend["parameters"], label_filters)
    runs = f"{finished} finished run{'s' if finished != 1 else ''}"
    if finished == 0:
        return {"title": "No finished runs yet", "widen": False,
                "text": "A trend draws the response times, requests per second and failure % of this scenario's "
                        "finished runs, one point a run, once 2 runs have finished. Start a run and let it finish "
                        "(failed and cancelled runs do not count)."}
    if count == 0:
        return {"title": "No finished run matches these filters", "widen": True,
                "text": f"Only runs with {words} are shown, and none of this scenario's {runs} has them. "
                        "Widen the filter: remove a filter with its × above."}
    only = f"run #{trend['points'][0]['id']}"
    if not words:
        return {"title": "Only one finished run so far", "widen": False,
                "text": f"A trend draws a line from 2 finished runs on, and {only} is the only one. "
                        "Run the scenario again to see how its figures move."}
    if finished == 1:
        return {"title": "Only one finished run so far", "widen": False,
                "text": f"A trend draws a line from 2 finished runs on, and {only} (with {words}) is the only one. "
                        "Run the scenario again with these parameters and labels."}
    return {"title": "Only one finished run matches these filters", "widen": True,
            "text": f"A trend draws a line from 2 finished runs on, and of this scenario's {runs} only {only} has "
                    f"{words}. Run the scenario again with these parameters and labels, or widen the filter: "
                    "remove a filter with its × above."}


def _finished(scenario, parameters: dict, label_filters: list):
    runs = scenario.runs.filter(status=Run.Status.FINISHED)
    for name, value in parameters.items():
        runs = runs.filter(**{f"params__{name}": value})
    return run_labels.filter_runs(runs, label_filters)


def parameter_set(params: dict) -> tuple:
    return tuple(params.get(name) for name in PARAMETERS)


def trend(scenario, limit: int, parameters: dict | None = None, label_filters: list | None = None) -> dict:
    """Headline figures of the scenario's last `limit` finished runs with these parameters and labels, oldest
    first, as chart columns; `markers` where the locustfile version or the labels changed between two runs."""
    parameters, label_filters = parameters or {}, label_filters or []
    runs = list(
        _finished(scenario, parameters, label_filters).select_related("version")
        .only("id", "created_at", "started_at", "ended_at", "total_requests", "total_failures", "rps",
              "p50_ms", "p95_ms", "p99_ms", "params", "labels", "version__number")
        .order_by("-created_at", "-id")[:limit]
    )
    runs.reverse()
    points = [{
        "index": index, "id": run.pk, "url": run.get_absolute_url(), "at": run.created_at,
        "requests": run.total_requests, "rps": run.rps, "p50_ms": run.p50_ms, "p95_ms": run.p95_ms,
        "p99_ms": run.p99_ms, "fail_pct": failure_percent(run.total_failures, run.total_requests),
        "users": run.params.get("users"), "slots": run.params.get("slots"),
        "spawn_rate": run.params.get("spawn_rate"), "duration": run.params.get("duration"),
        "host": run.params.get("host"), "version": run.version.number, "labels": run_labels.ordered(run.labels),
    } for index, run in enumerate(runs, start=1)]
    sets = Counter(parameter_set(run.params) for run in runs)
    unmarked = per_run_labels(points)
    return {
        "limit": limit, "count": len(points), "points": points,
        "x": [p["index"] for p in points], "ids": [p["id"] for p in points], "urls": [p["url"] for p in points],
        **{key: [p[key] for p in points] for key in ("p50_ms", "p95_ms", "p99_ms", "rps", "fail_pct")},
        "markers": markers(points, unmarked), "unmarked_labels": unmarked,
        "parameters": parameters, "labels": [f"{key}={value}" for key, value in label_filters],
        "description": description(limit, len(points), parameters, label_filters),
        "mixed": mixed_parameters(sets) if len(sets) > 1 else "",
    }


def per_run_labels(points: list[dict]) -> list[str]:
    """Label keys whose value changes from every run to the next (a commit, a build number), over at least
    PER_RUN_MINIMUM runs: a marker between every two runs would hide the ones that matter."""
    if len(points) < PER_RUN_MINIMUM:
        return []
    keys = {key for point in points for key in point["labels"]}
    return sorted(key for key in keys if all(before["labels"].get(key) != after["labels"].get(key)
                                             for before, after in zip(points, points[1:])))


def markers(points: list[dict], unmarked: list[str] = ()) -> list[dict]:
    """[{t, kind, label, text}] for SwarmCharts: between two runs (t = the later one's index − 0.5) whose
    locustfile versions differ (kind "version") or whose labels differ (kind "labels"), but for the label
    keys in `unmarked`."""
    found = []

    def marked(labels: dict) -> dict:
        return {key: value for key, value in labels.items() if key not in unmarked}

    for before, after in zip(points, points[1:]):
        t = after["index"] - 0.5
        if before["version"] != after["version"]:
            found.append({"t": t, "kind": "version", "label": f"v{after['version']}",
                          "text": f"Locustfile v{before['version']} → v{after['version']} from run #{after['id']}"})
        changed = run_labels.changes(marked(before["labels"]), marked(after["labels"]))
        if changed:
            words = " ".join(changed)
            short = words if len(words) <= MARKER_LABEL_LENGTH else words[:MARKER_LABEL_LENGTH - 1] + "…"
            found.append({"t": t, "kind": "labels", "label": short,
                          "text": f"Labels from run #{after['id']}: {words}"})
    return found


def _in_order(value) -> tuple:
    """Numbers by size, then strings, then None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value)) if value is not None else (2, 0, "")


def mixed_parameters(sets: Counter) -> str:
    """"users 5, 10 and 15; slots 1 and 2": the parameters that differ among the runs shown."""
    parts = []
    for position, name in enumerate(PARAMETERS):
        values = sorted({values[position] for values in sets}, key=_in_order)
        if len(values) > 1:
            shown = [describe_parameter(name, value) if name in ("duration", "host") else _number(value)
                     for value in values]
            listed = ", ".join(shown[:-1]) + " and " + shown[-1]
            parts.append(f"{name.replace('_', ' ')} {listed}")
    return "; ".join(parts)


def groups(scenario, parameters: dict | None = None, label_filters: list | None = None) -> dict:
    """What the trend can be narrowed to, among the scenario's last GROUP_SCAN finished runs matching the
    filters so far: `sets` [{parameters, text, count}] most used first (the parameters that vary among them
    named), and `labels` {key: [values]}."""
    runs = _finished(scenario, parameters or {}, label_filters or []).order_by("-created_at", "-id")
    rows = list(runs.values_list("params", "labels")[:GROUP_SCAN])
    sets = Counter(parameter_set(params) for params, _ in rows)
    varying = [position for position in range(len(PARAMETERS)) if len({values[position] for values in sets}) > 1]
    shown = []
    for values, count in sorted(sets.items(), key=lambda item: -item[1])[:MAX_GROUPS]:
        chosen = {name: values[position] for position, name in enumerate(PARAMETERS)
                  if values[position] not in (None, "")}
        text = " · ".join(describe_parameter(PARAMETERS[position], values[position]) for position in
                          (varying or range(len(PARAMETERS))) if values[position] is not None)
        shown.append({"parameters": chosen, "text": text, "count": count})
    return {"sets": shown, "labels": run_labels.tally(labels for _, labels in rows), "scanned": len(rows)}
