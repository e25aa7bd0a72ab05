"""Starting, watching and stopping runs; the cluster page."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from runs import cluster, services
from runs.access import get_run_for_user
from runs.forms import RunForm
from runs.models import Run, RunTick
from scenarios.access import get_project_for_user, get_scenario_for_user
from scenarios.models import Project, Role


def run_create(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id, Role.RUNNER)
    version = scenario.current_version
    if version is None:
        messages.error(request, "Upload a locustfile before starting a run.")
        return redirect(scenario)
    form = RunForm(request.POST or None, scenario=scenario, version=version)
    if request.method == "POST" and form.is_valid():
        try:
            run = services.start_run(scenario, user=request.user, params=form.params())
        except services.RunError as error:
            form.add_error(None, str(error))
        else:
            return redirect(run)
    return render(request, "runs/run_form.html", {
        "form": form, "scenario": scenario, "project": scenario.project, "membership": membership,
        "version": version, "capacity": cluster.capacity(),
    })


def run_detail(request, run_id):
    run, membership = get_run_for_user(request, run_id)
    ticks = list(RunTick.objects.filter(run=run).values("tick", "users", "rps", "fails_per_s", "p50_ms", "p95_ms",
                                                           "p99_ms").order_by("-tick")[:20])
    return render(request, "runs/run_detail.html", {
        "run": run, "project": run.project, "scenario": run.scenario, "membership": membership,
        "slots": run.slots.all(), "ticks": ticks, "queue_position": services.queue_position(run),
        "endpoints": [row for row in run.totals if row.get("name") != "Aggregated"],
        "aggregate": next((row for row in run.totals if row.get("name") == "Aggregated"), None),
        "can_run": membership.allows(Role.RUNNER),
    })


def run_status(request, run_id):
    """A small JSON view of a run, for scripts and for the page's refresh."""
    run, _ = get_run_for_user(request, run_id)
    return JsonResponse({
        "id": run.pk, "status": run.status, "reason": run.reason, "degraded": run.degraded,
        "requests": run.total_requests, "failures": run.total_failures, "rps": run.rps, "p95_ms": run.p95_ms,
        "users": run.current_users, "elapsed": run.elapsed_seconds(), "queue_position": services.queue_position(run),
    })


@require_POST
def run_stop(request, run_id):
    run, _ = get_run_for_user(request, run_id, Role.RUNNER)
    was = run.status
    if services.request_stop(run, request.user):
        run.refresh_from_db()
        verb = "cancelled" if run.status == Run.Status.CANCELLED else "stopping"
        messages.success(request, f"Run #{run.pk} {verb}.")
    else:
        messages.warning(request, f"Run #{run.pk} is {was}: nothing to stop.")
    return redirect(run)


def run_list(request, slug):
    project, membership = get_project_for_user(request, slug)
    runs = project.runs.select_related("scenario", "created_by").defer("stats_blob", "totals", "errors", "exceptions")
    scenario_id = request.GET.get("scenario")
    if scenario_id and scenario_id.isdigit():
        runs = runs.filter(scenario_id=int(scenario_id))
    page = Paginator(runs, 25).get_page(request.GET.get("page"))
    return render(request, "runs/run_list.html", {"project": project, "membership": membership, "page": page})


def cluster_view(request):
    workers = cluster.workers()
    mine = Project.objects.for_user(request.user)
    waiting = list(Run.objects.filter(status=Run.Status.QUEUED).order_by("created_at", "id")
                   .select_related("project", "scenario").defer("stats_blob", "totals"))
    active = list(Run.objects.filter(status__in=Run.HOLDING_SLOTS).select_related("project", "scenario")
                  .defer("stats_blob", "totals"))
    visible = set(mine.values_list("pk", flat=True))
    online = [w for w in workers if w.online]
    return render(request, "runs/cluster.html", {
        "workers": workers, "total_slots": sum(w.slots for w in online), "busy_slots": sum(w.busy for w in online),
        "waiting": [(index + 1, run, run.project_id in visible) for index, run in enumerate(waiting)],
        "active": [(run, run.project_id in visible) for run in active],
    })
