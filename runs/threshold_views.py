"""Pass/fail criteria of a scenario: listed on the scenario page, changed by maintainers only.

Outsiders get 404 (through scenarios.access), members below maintainer 403.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from runs import thresholds
from runs.forms import ThresholdForm
from runs.models import Threshold
from scenarios.access import get_scenario_for_user
from scenarios.models import Role


def _get_threshold_for_user(request, threshold_id, role=Role.VIEWER):
    """The criterion if the user is a member of its project (404 otherwise), with the role checked (403)."""
    threshold = (Threshold.objects.filter(pk=threshold_id, scenario__project__memberships__user=request.user).first()
                 if request.user.is_authenticated else None)
    if threshold is None:
        raise Http404("No such criterion.")
    scenario, membership = get_scenario_for_user(request, threshold.scenario_id, role)
    return threshold, scenario, membership


def _warn_unknown_endpoint(request, scenario, endpoint: str) -> None:
    """Allowed, but a typo would make the criterion fail every run with "no requests": say so."""
    if not endpoint:
        return
    known = thresholds.known_endpoints(scenario)
    if endpoint not in known:
        seen = "no recent run of this scenario recorded it" if known else "this scenario has no finished run yet"
        messages.warning(request, f"“{endpoint}”: {seen}. A criterion on an endpoint without requests fails with "
                                  "“no requests”: check it is written as METHOD name, as in the statistics table.")


def _warn_window_longer_than_runs(request, scenario, threshold: Threshold) -> None:
    """Allowed (a run may be longer than the default), but a run shorter than its window fails the criterion."""
    if threshold.window_seconds and threshold.window_seconds > scenario.default_duration:
        messages.warning(request, f"The window ({threshold.window_seconds} s) is longer than this scenario’s runs "
                                  f"last by default ({scenario.default_duration} s): a run without a full window "
                                  "fails the criterion (“no full window”). Shorten the window or run longer.")


def _form_page(request, form, scenario, membership, threshold=None, status=200):
    return render(request, "runs/threshold_form.html", {
        "form": form, "scenario": scenario, "project": scenario.project, "membership": membership,
        "threshold": threshold, "known_endpoints": thresholds.known_endpoints(scenario),
    }, status=status)


def threshold_create(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    form = ThresholdForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            threshold = form.save(commit=False)
            threshold.scenario = scenario
            threshold.save()
            messages.success(request, f"Criterion added: {threshold}.")
            _warn_unknown_endpoint(request, scenario, threshold.endpoint)
            _warn_window_longer_than_runs(request, scenario, threshold)
            return redirect(f"{scenario.get_absolute_url()}#criteria")
        return _form_page(request, form, scenario, membership, status=400)
    return _form_page(request, form, scenario, membership)


def threshold_edit(request, threshold_id):
    threshold, scenario, membership = _get_threshold_for_user(request, threshold_id, Role.MAINTAINER)
    form = ThresholdForm(request.POST or None, instance=threshold)
    if request.method == "POST":
        if form.is_valid():
            threshold = form.save()
            messages.success(request, f"Criterion saved: {threshold}. Runs that already ended keep their verdict.")
            _warn_unknown_endpoint(request, scenario, threshold.endpoint)
            _warn_window_longer_than_runs(request, scenario, threshold)
            return redirect(f"{scenario.get_absolute_url()}#criteria")
        return _form_page(request, form, scenario, membership, threshold, status=400)
    return _form_page(request, form, scenario, membership, threshold)


@require_POST
def threshold_delete(request, threshold_id):
    threshold, scenario, _ = _get_threshold_for_user(request, threshold_id, Role.MAINTAINER)
    text = str(threshold)
    threshold.delete()
    messages.success(request, f"Criterion deleted: {text}. Runs that already ended keep their verdict.")
    return redirect(f"{scenario.get_absolute_url()}#criteria")
