"""Allowed targets: a project's list (members read, maintainers propose, prove and delete) and the
admins' page of pending proposals across projects (approve or reject)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from scenarios.access import get_project_for_user
from scenarios.models import Role
from targets import policy, services
from targets.forms import DecideForm, ProposeForm
from targets.models import AllowedTarget


def _staff_or_404(request) -> None:
    if not request.user.is_staff:
        raise Http404("No such page.")


def target_list(request, slug):
    project, membership = get_project_for_user(request, slug)
    form = ProposeForm(project=project)
    if request.method == "POST":
        project, membership = get_project_for_user(request, slug, Role.MAINTAINER)
        form = ProposeForm(request.POST, project=project)
        if form.is_valid():
            entry = services.propose(project, form.cleaned_data["pattern"], request.user, form.cleaned_data["note"])
            messages.success(request, f"{entry.pattern} proposed: an admin approves it"
                                      + (", or prove it below." if entry.provable else "."))
            return redirect("targets-list", slug=project.slug)
    entries = project.allowed_targets.select_related("proposed_by", "decided_by")
    return render(request, "targets/list.html", {
        "project": project, "membership": membership, "form": form, "entries": entries,
        "enforced": policy.enforced(), "loopback": policy.loopback_allowed()})


def _entry(project, target_id) -> AllowedTarget:
    return get_object_or_404(AllowedTarget, pk=target_id, project=project)


@require_POST
def target_delete(request, slug, target_id):
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    entry = _entry(project, target_id)
    services.delete(entry, request.user)
    messages.success(request, f"{entry.pattern} removed from the allowed targets.")
    return redirect("targets-list", slug=project.slug)


@require_POST
def target_verify(request, slug, target_id):
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    entry = _entry(project, target_id)
    result = services.verify(entry, request.user)
    if result.proven:
        messages.success(request, f"{entry.pattern} is approved: {result.summary}.")
    else:
        messages.error(request, f"No proof of control for {entry.pattern} yet: {result.summary}.")
    return redirect("targets-list", slug=project.slug)


def pending(request):
    """Admins: every project's proposals waiting for a decision, oldest first; the latest decisions below."""
    _staff_or_404(request)
    entries = AllowedTarget.objects.select_related("project", "proposed_by")
    return render(request, "targets/pending.html", {
        "pending": entries.filter(status=AllowedTarget.Status.PROPOSED).order_by("proposed_at"),
        "decided": entries.exclude(status=AllowedTarget.Status.PROPOSED).select_related("decided_by")
                          .order_by("-decided_at")[:20],
        "enforced": policy.enforced()})


@require_POST
def decide(request, target_id):
    _staff_or_404(request)
    entry = get_object_or_404(AllowedTarget.objects.select_related("project"), pk=target_id)
    form = DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
    elif form.cleaned_data["decision"] == "approve":
        services.approve(entry, request.user, form.cleaned_data["note"])
        messages.success(request, f"{entry.pattern} approved for {entry.project.name}.")
    else:
        services.reject(entry, request.user, form.cleaned_data["note"])
        messages.success(request, f"{entry.pattern} rejected for {entry.project.name}.")
    return redirect("targets-pending")
