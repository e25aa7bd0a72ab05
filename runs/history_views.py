"""Run history of a project, trends of a scenario, comparison of runs."""

from django.core.paginator import Paginator
from django.http import Http404, JsonResponse, QueryDict
from django.shortcuts import render

from runs import history, run_noise, trends
from runs import labels as run_labels
from runs.models import Run
from scenarios.access import get_project_for_user, get_scenario_for_user
from scenarios.models import Role


def run_list(request, slug):
    """Every run of the project, newest first, narrowed by the GET filters; garbage filters are named, not fatal."""
    project, membership = get_project_for_user(request, slug)
    form = history.RunFilterForm(request.GET, project=project)
    form.is_valid()
    runs = history.filter_runs(
        project.runs.with_peak_users().select_related("scenario", "created_by", "stop_requested_by")
        .defer("stats_blob", "totals", "errors", "exceptions", "warnings"),
        form,
    )
    page = Paginator(runs, history.PAGE_SIZE).get_page(request.GET.get("page"))
    filtered = any(form.cleaned_data.get(name) for name in form.fields) or bool(form.label_filters)
    known_labels = run_labels.known(project.runs.all())
    return render(request, "runs/run_list.html", {
        "project": project, "membership": membership, "page": page, "form": form, "problems": form.problems(),
        "filtered": filtered, "scenario": form.cleaned_data.get("scenario"),
        "compare_max": history.COMPARE_MAX,
        "label_chips": _label_chips(request, form.label_filters), "label_query": _without(request.GET),
        "known_labels": known_labels, "known_label_pairs": run_labels.known_pairs(known_labels),
    })


def _without(query, name: str | None = None, drop=lambda value: True) -> QueryDict:
    """A copy of the query string without its page and, given `name`, without those of its values `drop` picks
    (all of them by default)."""
    kept = query.copy()
    kept.pop("page", None)
    if name is not None:
        left = [value for value in kept.getlist(name) if not drop(value)]
        if left:
            kept.setlist(name, left)
        else:
            kept.pop(name, None)
    return kept


def _label_chips(request, label_filters) -> list[dict]:
    """One removable chip per label filter: its text and the URL without it."""
    chips = []
    for pair in label_filters:
        def same(raw, pair=pair):  # "env = staging", typed with spaces, is the same filter
            return run_labels.parse_filters([raw])[0] == [pair]

        chips.append({"text": "=".join(pair), "remove_url": "?" + _without(request.GET, "label", same).urlencode()})
    return chips


def _trend_context(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id)
    limit, problem = trends.parse_trend_limit(request.GET.get("n"))
    form = trends.TrendFilterForm(request.GET)
    form.is_valid()
    trend = trends.trend(scenario, limit, form.parameters(), form.label_filters)
    return scenario, membership, trend, problem, form


def scenario_trends(request, scenario_id):
    """p50/p95/p99, RPS and failure % over the scenario's last N finished runs, like for like: only runs with
    the parameters and labels asked for (?users=50&slots=2&label=env=staging)."""
    scenario, membership, trend, problem, form = _trend_context(request, scenario_id)
    parameters = form.parameters()
    offered = trends.groups(scenario, parameters, form.label_filters)
    chips = [{"text": trends.describe_parameter(name, value),
              "remove_url": "?" + _without(request.GET, name).urlencode()} for name, value in parameters.items()]
    chips += _label_chips(request, form.label_filters)
    empty = None
    if trend["count"] < 2:  # what to do instead of charts, knowing how many runs the filters leave out
        finished = scenario.runs.filter(status=Run.Status.FINISHED).count()
        empty = {**trends.empty_state(trend, finished, form.label_filters), "finished": finished}
    return render(request, "runs/trends.html", {
        "scenario": scenario, "project": scenario.project, "membership": membership, "trend": trend,
        "problem": problem, "problems": form.problems(), "choices": trends.TREND_CHOICES, "form": form,
        "chips": chips, **_trend_choices(request, form, offered),
        "known_label_pairs": run_labels.known_pairs(offered["labels"]),
        "filtered": bool(parameters or form.label_filters), "empty": empty,
        "can_run": membership.allows(Role.RUNNER) and scenario.versions.exists(),
    })


def _trend_choices(request, form, offered) -> dict:
    """Links that narrow the trend: to each parameter set its runs have (`groups`), and to each label value
    not filtered on yet (`label_links`), keeping the other filters."""
    base = _without(request.GET)
    parameters = form.parameters()
    for group in offered["sets"]:
        query = base.copy()
        for name in trends.PARAMETERS:
            query.pop(name, None)
        for name, value in group["parameters"].items():
            query[name] = str(value)
        group["url"] = "?" + query.urlencode()
        group["current"] = group["parameters"] == parameters
    label_links = []
    for key, values in offered["labels"].items():
        links = []
        for value in values[:8]:
            if (key, value) in form.label_filters:
                continue
            query = base.copy()
            query.appendlist("label", f"{key}={value}")
            links.append({"value": value, "url": "?" + query.urlencode()})
        if links:
            label_links.append({"key": key, "links": links})
    return {"groups": offered["sets"], "label_links": label_links}


def scenario_trends_data(request, scenario_id):
    """The same trend as JSON, for the small charts on the scenario page (and scripts: the same filters)."""
    _, _, trend, problem, form = _trend_context(request, scenario_id)
    return JsonResponse({**trend, "problem": problem, "problems": form.problems()})


def run_compare(request, slug):
    """2 to 5 runs of one project side by side; the first is the baseline.

    A run outside this project answers 404 like a run that does not exist, so a comparison
    URL cannot be used to probe other projects.
    """
    project, membership = get_project_for_user(request, slug)
    context = {"project": project, "membership": membership, "compare_min": history.COMPARE_MIN,
               "compare_max": history.COMPARE_MAX}
    try:
        run_ids = history.parse_run_ids(request.GET.getlist("runs"))
        if len(request.GET.getlist("runs")) > 1:
            run_ids.sort()  # ticked in the history (newest first): the oldest is the baseline
    except history.CompareError as error:
        return render(request, "runs/compare.html", {**context, "error": str(error)}, status=400)
    found = {run.pk: run for run in (
        Run.objects.for_user(request.user).filter(project=project, pk__in=run_ids)
        .select_related("scenario", "version", "created_by")
        .defer("errors", "exceptions", "history", "warnings", "version__content", "version__findings")
    )}  # stats_blob is read: the verdicts' intervals come from the runs' histograms
    if len(found) != len(run_ids):
        raise Http404("No such run in this project.")
    runs = [found[run_id] for run_id in run_ids]
    palette = history.PALETTE
    columns = [{
        "run": run, "color": palette[index % len(palette)], "baseline": index == 0,
        "rebase": "?runs=" + ",".join(str(r.pk) for r in [run, *(other for other in runs if other is not run)]),
    } for index, run in enumerate(runs)]
    rule = history.compare_rule()
    noise = run_noise.of_history(runs[0], rule.level, exclude=run_ids)
    parameters = history.parameter_rows(runs)
    return render(request, "runs/compare.html", {
        **context, "runs": runs, "columns": columns, "baseline": runs[0], "metrics": history.METRICS,
        "endpoints": history.compare_endpoints(runs, rule, noise), "legend": history.rule_text(rule),
        "noise_text": history.noise_text(noise),
        "parameters": parameters, "parameters_differ": any(row["differs"] for row in parameters),
        "diffs": history.source_diffs(runs), "overlay": history.overlay_series(runs),
    })
