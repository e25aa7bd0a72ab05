"""Starting, watching and stopping runs; the cluster page."""

from django.contrib import messages
from django.db.models.fields.json import KeyTransform
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from runs import cluster, cluster_views, health, live, services, tick_series
from runs.access import get_run_for_user
from runs.forms import LiveUsersForm, RunForm
from runs.models import Run, RunTick
from runs.ratio import ratio_model
from scenarios.access import get_scenario_for_user
from scenarios.models import Project, Role
from sharing import queue, quotas


def run_create(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id, Role.RUNNER)
    version = scenario.current_version
    if version is None:
        messages.error(request, "Upload a locustfile before starting a run.")
        return redirect(scenario)
    # "Run again" (?again=<run>): that run's parameters, labels and variables, so equal runs stay equal
    # (comparisons learn run-to-run noise from runs with the same parameters and labels).
    again = _run_to_repeat(request, scenario)
    initial = {"initial": RunForm.again(again), "options_initial": (again.params or {}).get("options")} if again else {}
    form = RunForm(request.POST or None, scenario=scenario, version=version, **initial)
    if request.method == "POST" and form.is_valid():
        try:
            run = services.start_run(scenario, user=request.user, params=form.params(), labels=form.labels)
        except services.RunError as error:
            # A quota's refusal names each field it concerns; the allow list's names the host.
            errors = getattr(error, "errors", None) or {getattr(error, "field", None) or "__all__": [str(error)]}
            for field, refusals in errors.items():
                for refusal in refusals:
                    form.add_error(field if field in form.fields else None, refusal)
        else:
            return redirect(run)
    return render(request, "runs/run_form.html", {
        "form": form, "scenario": scenario, "project": scenario.project, "membership": membership, "again": again,
        "version": version, "capacity": cluster.capacity(), "unisolated_slots": cluster.unisolated_slots(),
        "drained_slots": cluster.drained_slots(), "quota_warning": quotas.month_warning(scenario.project),
        "limits": quotas.limits(scenario.project),
    })


def _run_to_repeat(request, scenario) -> Run | None:
    """The run named by ?again= on the form's first view, if it is a run of this scenario (else None: defaults)."""
    wanted = request.GET.get("again", "")
    if request.method != "GET" or not wanted.isdigit():
        return None
    return Run.objects.filter(pk=int(wanted), scenario=scenario).defer("stats_blob").first()


LOG_LEVELS = ("OUTPUT", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")  # workers.logs.LEVELS, display order


def run_detail(request, run_id):
    """The live run page: the state is embedded for the first paint, then the WebSocket keeps it current."""
    run, membership = get_run_for_user(request, run_id)
    shape = bool(run.version.findings.get("shape"))
    return render(request, "runs/run_detail.html", {
        "run": run, "project": run.project, "scenario": run.scenario, "membership": membership,
        "state": live.full_state(run),
        "waits_for_isolation": run.status == Run.Status.QUEUED and cluster.capacity() == 0
        and cluster.unisolated_slots() > 0,
        "can_run": membership.allows(Role.RUNNER), "has_shape": shape, "log_levels": LOG_LEVELS,
        "max_endpoints": services.max_endpoints(),
        "ratio_model": ratio_model(run.version.findings or {}, run.params or {}),
        "users_form": LiveUsersForm(initial={
            "users": run.params.get("live_users", run.params.get("users")),
            "spawn_rate": run.params.get("live_spawn_rate", run.params.get("spawn_rate"))}),
    })


@require_POST
def run_users(request, run_id):
    """Change users and spawn rate while the run goes (Locust's "Edit"). JSON for the page's script."""
    run, _ = get_run_for_user(request, run_id, Role.RUNNER)
    form = LiveUsersForm(request.POST)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if not form.is_valid():
        errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
        if wants_json:
            return JsonResponse({"ok": False, "errors": errors}, status=400)
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        return redirect(run)
    try:
        services.change_users(run, users=form.cleaned_data["users"], spawn_rate=form.cleaned_data["spawn_rate"],
                              user=request.user)
    except services.RunError as error:
        if wants_json:
            return JsonResponse({"ok": False, "errors": {"__all__": [str(error)]}}, status=409)
        messages.error(request, str(error))
        return redirect(run)
    if wants_json:
        return JsonResponse({"ok": True, "users": form.cleaned_data["users"],
                             "spawn_rate": form.cleaned_data["spawn_rate"]})
    messages.success(request, f"Users changing to {form.cleaned_data['users']}.")
    return redirect(run)


def run_status(request, run_id):
    """A small JSON view of a run, for scripts and for the page's refresh."""
    run, _ = get_run_for_user(request, run_id)
    return JsonResponse({
        "id": run.pk, "status": run.status, "reason": run.reason, "degraded": run.degraded,
        "requests": run.total_requests, "failures": run.total_failures, "rps": run.rps, "p95_ms": run.p95_ms,
        "users": run.current_users, "elapsed": run.elapsed_seconds(), "queue_position": services.queue_position(run),
    })


def _tick_param(value: str) -> int | None:
    """A ?from= / ?to= tick: None when absent; ValueError when not a whole number of a sane size."""
    if value == "":
        return None
    if len(value) > 12 or not value.lstrip("-").isdigit():
        raise ValueError(value)
    return int(value)


def run_series(request, run_id):
    """The run's series from tick ?from= to ?to= (inclusive; either may be left out), for the charts' zoom:
    every second when the window spans at most 2,000 of them, else downsampled like the first paint
    (runs/tick_series.py), with the width of its points in seconds."""
    run, _ = get_run_for_user(request, run_id)
    try:
        start, end = _tick_param(request.GET.get("from", "")), _tick_param(request.GET.get("to", ""))
    except ValueError:
        return JsonResponse({"error": "from and to are tick numbers."}, status=400)
    if start is not None and end is not None and end < start:
        return JsonResponse({"error": "to is before from."}, status=400)
    series, width = tick_series.run_series(run.pk, start=start, end=end)
    return JsonResponse({"series": series, "series_width": width})


MAX_CHART_ENDPOINTS = 8   # lines per chart a reader can still tell apart (SwarmCharts.colors.palette)
ENDPOINT_SERIES_KEYS = ("rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms")


def run_endpoint_series(request, run_id):
    """The per-second series of the endpoints picked on the Charts tab (?name=GET%20/ok, repeatable; from
    ?since=<tick>): columns aligned with "tick", null where an endpoint had no request that second. The
    database picks the keys out of RunTick.endpoints, so a run with 500 endpoints sends only these."""
    run, _ = get_run_for_user(request, run_id)
    names = list(dict.fromkeys(request.GET.getlist("name")))[:MAX_CHART_ENDPOINTS]
    if not names:
        return JsonResponse({"tick": [], "endpoints": {}})
    ticks = RunTick.objects.filter(run=run).order_by("tick")
    since = request.GET.get("since", "")
    if since.lstrip("-").isdigit():
        ticks = ticks.filter(tick__gte=int(since))
    picked = {f"e{i}": KeyTransform(name, "endpoints") for i, name in enumerate(names)}
    rows = list(ticks.annotate(**picked).values_list("tick", *picked))
    endpoints = {}
    for i, name in enumerate(names):
        figures = [row[i + 1] or {} for row in rows]
        endpoints[name] = {key: [f.get(key) for f in figures] for key in ENDPOINT_SERIES_KEYS}
    return JsonResponse({"tick": [row[0] for row in rows], "endpoints": endpoints})


@require_POST
def run_stop(request, run_id):
    run, _ = get_run_for_user(request, run_id, Role.RUNNER)
    was = run.status
    if services.request_stop(run, request.user):
        run.refresh_from_db()
        if run.status == Run.Status.CANCELLED:  # "stopping" shows on the live page; a banner would outlive it
            messages.success(request, f"Run #{run.pk} cancelled.")
    else:
        messages.warning(request, f"Run #{run.pk} is {was}: nothing to stop.")
    return redirect(run)


def cluster_view(request):
    workers = cluster.workers()
    mine = Project.objects.for_user(request.user)
    plan = queue.plan()  # the fair queue's order, with why each run waits and its estimated start
    active = list(Run.objects.filter(status__in=Run.HOLDING_SLOTS).select_related("project", "scenario")
                  .defer("stats_blob", "totals"))
    # Members see their projects' runs; admins, who stop and drain for everyone, see every project's.
    visible = set((Project.objects.all() if request.user.is_staff else mine).values_list("pk", flat=True))
    online = [w for w in workers if w.online]
    leads, standing_by = health.collector_leads()
    return render(request, "runs/cluster.html", {
        "collector_leads": leads, "collectors_standing_by": standing_by,
        "workers": workers, "worker_rows": cluster_views.slot_rows(workers, visible),
        "total_slots": sum(w.slots for w in online if w.eligible and not w.draining),
        "draining_slots": sum(w.slots for w in online if w.eligible and w.draining),
        "busy_slots": sum(w.busy for w in online), "unisolated_slots": sum(w.slots for w in online if not w.eligible),
        "require_isolation": cluster.require_isolation(), "registry_readable": health.redis_reachable(),
        "waiting": [(entry, queue.eta_words(entry), entry.run.project_id in visible) for entry in plan.entries],
        "active": [(run, run.project_id in visible) for run in active],
    })
