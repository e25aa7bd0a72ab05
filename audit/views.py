"""The audit log pages: a project's log for its maintainers, every project's for staff; both filter and export CSV.

A project's log is fetched through scenarios.access (404 outside the user's projects, 403 below
maintainer, as the project's other maintainer-only pages); the site-wide log answers 404 to anyone
who is not staff, so it cannot be told apart from a page that does not exist.
"""

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from audit import filters
from audit.models import AuditEntry
from scenarios.access import get_project_for_user
from scenarios.models import Role


def _staff_or_404(request) -> None:
    if not request.user.is_staff:
        raise Http404("No such page.")


def _filtered(request, entries, *, with_project: bool):
    form = filters.AuditFilterForm(request.GET, entries, with_project=with_project)
    form.is_valid()
    return form, filters.filter_entries(entries, form).select_related("actor")


def _page(request, template_context: dict, entries, form, csv_url: str):
    page = Paginator(entries, filters.PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/log.html", {
        **template_context, "page": page, "rows": [(entry, filters.details_text(entry.details)) for entry in page],
        "form": form, "problems": form.problems(), "filtered": form.filtered(),
        "csv_url": f"{csv_url}?{query.urlencode()}" if query else csv_url,
    })


def _csv(entries, name: str) -> HttpResponse:
    response = HttpResponse(filters.to_csv(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


def project_log(request, slug):
    project, membership = get_project_for_user(request, slug, Role.MAINTAINER)
    form, entries = _filtered(request, AuditEntry.objects.filter(project=project), with_project=False)
    return _page(request, {"project": project, "membership": membership}, entries, form,
                 reverse("audit-project-csv", args=[project.slug]))


def project_log_csv(request, slug):
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    _, entries = _filtered(request, AuditEntry.objects.filter(project=project), with_project=False)
    return _csv(entries, f"audit-{project.slug}")


def site_log(request):
    _staff_or_404(request)
    form, entries = _filtered(request, AuditEntry.objects.for_user(request.user), with_project=True)
    return _page(request, {"site_wide": True}, entries, form, reverse("audit-site-csv"))


def site_log_csv(request):
    _staff_or_404(request)
    _, entries = _filtered(request, AuditEntry.objects.for_user(request.user), with_project=True)
    return _csv(entries, "audit")
