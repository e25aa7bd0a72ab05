"""Run history of a project, trends of a scenario, comparison of runs."""

from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import render

from runs import history
from runs.models import Run
from scenarios.access import get_project_for_user, get_scenario_for_user


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
    filtered = any(form.cleaned_data.get(name) for name in form.fields)
    return render(request, "runs/run_list.html", {
        "project": project, "membership": membership, "page": page, "form": form, "problems": form.problems(),
        "filtered": filtered, "scenario": form.cleaned_data.get("scenario"),
        "compare_max": history.COMPARE_MAX,
    })


def _trend_context(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id)
    limit, problem = history.parse_trend_limit(request.GET.get("n"))
    return scenario, membership, history.trend(scenario, limit), problem


def scenario_trends(request, scenario_id):
    """p50/p95/p99, RPS and failure % over the scenario's last N finished runs."""
    scenario, membership, trend, problem = _trend_context(request, scenario_id)
    return render(request, "runs/trends.html", {
        "scenario": scenario, "project": scenario.project, "membership": membership, "trend": trend,
        "problem": problem, "choices": history.TREND_CHOICES,
    })


def scenario_trends_data(request, scenario_id):
    """The same trend as JSON, for the small charts on the scenario page."""
    _, _, trend, problem = _trend_context(request, scenario_id)
    return JsonResponse({**trend, "problem": problem})


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
        .defer("stats_blob", "errors", "exceptions", "history", "warnings", "version__content", "version__findings")
    )}
    if len(found) != len(run_ids):
        raise Http404("No such run in this project.")
    runs = [found[run_id] for run_id in run_ids]
    palette = history.PALETTE
    columns = [{
        "run": run, "color": palette[index % len(palette)], "baseline": index == 0,
        "rebase": "?runs=" + ",".join(str(r.pk) for r in [run, *(other for other in runs if other is not run)]),
    } for index, run in enumerate(runs)]
    return render(request, "runs/compare.html", {
        **context, "runs": runs, "columns": columns, "baseline": runs[0], "metrics": history.METRICS,
        "endpoints": history.compare_endpoints(runs), "parameters": history.parameter_rows(runs),
        "diffs": history.source_diffs(runs), "overlay": history.overlay_series(runs),
    })
