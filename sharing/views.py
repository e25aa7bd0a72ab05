"""Usage and quotas: a project's page (members read, admins set the quota) and the admins' page of all projects."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from audit.log import record
from runs.models import Run
from scenarios.access import get_project_for_user
from scenarios.models import Project
from sharing import quotas, usage
from sharing.forms import QuotaForm
from sharing.models import Quota


def project_usage(request, slug: str):
    """Slot-hours this month and per month, runs, top scenarios and users; the quota, which admins edit here."""
    project = _project(request, slug)
    quota = Quota.objects.filter(project=project).first()
    before = quotas.values(quota)  # before the form binds: is_valid() writes the posted values into the instance
    form = None
    if request.user.is_staff:
        form = QuotaForm(request.POST or None, instance=quota or Quota(project=project))
        if request.method == "POST" and form.is_valid():
            saved = form.save(commit=False)
            saved.project, saved.updated_by = project, request.user
            saved.save()
            after = quotas.values(saved)
            record("quota.changed", actor=request.user, project=project, subject=f"quota of {project.name}",
                   details={"changed": quotas.changes(before, after)})
            messages.success(request, f"The quota of {project.name} is saved.")
            return redirect("sharing-usage", project.slug)
    elif request.method == "POST":
        raise PermissionDenied("Only an admin sets quotas.")
    report = usage.report(Run.objects.filter(project=project), since=project.created_at)
    limits = quotas.limits_of(quota)
    return render(request, "sharing/usage.html", {
        "project": project, "report": report, "limits": limits, "form": form, "quota": quota,
        "quota_warning": quotas.month_warning(project), "site_defaults": quotas.site_defaults(),
        "top_scenarios": report.top(report.by_scenario), "top_users": report.top(report.by_user),
        "month_percent": (round(100 * report.this_month.slot_hours / limits.monthly_slot_hours)
                          if limits.monthly_slot_hours else None),
    })


def all_usage(request):
    """Every project's slot-hours (admins only), this month and the last 12; CSV with ?format=csv."""
    if not request.user.is_staff:
        raise Http404("No such page.")
    rows = _all_rows()
    if request.GET.get("format") == "csv":
        return _csv(rows)
    return render(request, "sharing/all_usage.html", {"rows": rows, "months": rows[0]["report"].months if rows else []})


def _project(request, slug: str) -> Project:
    if request.user.is_staff:  # admins set quotas for projects they are no member of
        return get_object_or_404(Project, slug=slug)
    project, _ = get_project_for_user(request, slug)
    return project


def _all_rows() -> list[dict]:
    quota_of = {quota.project_id: quota for quota in Quota.objects.all()}
    rows = []
    for project in Project.objects.order_by("name"):
        report = usage.report(Run.objects.filter(project=project))
        rows.append({"project": project, "report": report, "limits": quotas.limits_of(quota_of.get(project.pk))})
    return rows


def _csv(rows: list[dict]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="swarmdeck-usage.csv"'
    writer = csv.writer(response)
    writer.writerow(["project", "month", "slot_hours", "runs", "monthly_slot_hours_quota_now", "weight_now"])
    for row in rows:
        for month in row["report"].months:
            writer.writerow([row["project"].slug, month.start.strftime("%Y-%m"), f"{month.slot_hours:.4f}", month.runs,
                             "" if row["limits"].monthly_slot_hours is None else row["limits"].monthly_slot_hours,
                             row["limits"].weight])
    return response
