"""Pages for projects, members, scenarios and locustfile versions.

Every view fetches its objects through scenarios.access: outsiders get 404, members
below the needed role get 403.
"""

from django.contrib import messages
from django.db.models import Count, Max, OuterRef, Subquery
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.log import record
from scenarios import bundles
from scenarios import secrets as project_secrets
from scenarios.access import get_project_for_user, get_scenario_for_user, get_version_for_user
from scenarios.forms import (
    AddMemberForm,
    NewScenarioForm,
    ProjectForm,
    RoleForm,
    ScenarioForm,
    SecretForm,
    UploadVersionForm,
)
from scenarios.models import ROLE_HELP, Membership, Project, Role, Scenario
from scenarios.services import (
    MembershipError,
    add_member,
    add_version,
    change_role,
    create_project,
    create_scenario,
    remove_member,
    same_as_current,
)
from scenarios.source import render_file


def project_list(request):
    # Counted in subqueries: for_user() joins memberships, which would count only the user's own.
    scenarios = Scenario.objects.filter(project=OuterRef("pk")).order_by().values("project")
    members = Membership.objects.filter(project=OuterRef("pk")).order_by().values("project")
    projects = (
        Project.objects.for_user(request.user)
        .annotate(scenario_count=Subquery(scenarios.annotate(n=Count("pk")).values("n")),
                  member_count=Subquery(members.annotate(n=Count("pk")).values("n")))
        .order_by("name")
    )
    roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
    rows = [(project, Role(roles[project.pk])) for project in projects]
    return render(request, "scenarios/project_list.html", {"rows": rows})


def project_create(request):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = create_project(request.user, **form.cleaned_data)
        messages.success(request, f"Project {project.name} created. Add a scenario by uploading a locustfile.")
        return redirect(project)
    return render(request, "scenarios/project_form.html", {"form": form})


def project_detail(request, slug):
    project, membership = get_project_for_user(request, slug)
    scenarios = project.scenarios.annotate(version_count=Count("versions"), last_upload=Max("versions__uploaded_at"))
    return render(
        request,
        "scenarios/project_detail.html",
        {"project": project, "membership": membership, "scenarios": scenarios},
    )


def project_edit(request, slug):
    project, membership = get_project_for_user(request, slug, Role.MAINTAINER)
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        project = form.save()
        record("project.edited", actor=request.user, project=project, subject=f"project {project.name}",
               details={"changed": sorted(form.changed_data)})
        messages.success(request, "Project saved.")
        return redirect(project)
    return render(request, "scenarios/project_form.html", {"form": form, "project": project, "membership": membership})


def member_list(request, slug):
    project, membership = get_project_for_user(request, slug)
    form = AddMemberForm()
    if request.method == "POST":
        project, membership = get_project_for_user(request, slug, Role.MAINTAINER)
        form = AddMemberForm(request.POST)
        if form.is_valid():
            try:
                added = add_member(project, **form.cleaned_data, actor=request.user)
            except MembershipError as error:
                form.add_error("username", str(error))
            else:
                messages.success(request, f"{added.user.username} joined {project.name} as "
                                          f"{added.get_role_display().lower()}.")
                return redirect("scenarios-members", slug=project.slug)
    members = project.memberships.select_related("user")
    return render(
        request,
        "scenarios/members.html",
        {"project": project, "membership": membership, "members": members, "form": form,
         "roles": Role.choices, "role_help": [(Role(value).label, ROLE_HELP[value]) for value, _ in Role.choices]},
    )


def secret_list(request, slug):
    """The project's secrets, names only, for every member; maintainers add, replace and delete them."""
    project, membership = get_project_for_user(request, slug)
    form = SecretForm()
    if request.method == "POST":
        project, membership = get_project_for_user(request, slug, Role.MAINTAINER)
        form = SecretForm(request.POST)
        if form.is_valid():
            name = form.cleaned_data["name"]
            replaced = project.secrets.filter(name=name).exists()
            project_secrets.set_secret(project, name, form.cleaned_data["value"], request.user)
            messages.success(request, f"Secret {name} {'replaced' if replaced else 'saved'}. Its value will not be "
                                      "shown again.")
            return redirect("scenarios-secrets", slug=project.slug)
    rows = project.secrets.select_related("updated_by")
    used = {row.name: [s for s in project.scenarios.all() if row.name in (s.secret_names or [])] for row in rows}
    return render(request, "scenarios/secrets.html", {
        "project": project, "membership": membership, "form": form,
        "secrets": [(row, used[row.name]) for row in rows]})


@require_POST
def secret_delete(request, slug, name):
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    if not project_secrets.delete_secret(project, name, request.user):
        raise Http404("No such secret.")
    messages.success(request, f"Secret {name} deleted. Scenarios that receive it cannot start runs until it is set "
                              "again or unticked on their edit page.")
    return redirect("scenarios-secrets", slug=project.slug)


def _member_of(project, member_id) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user", "project"), pk=member_id, project=project)


@require_POST
def member_role(request, slug, member_id):
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    member = _member_of(project, member_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose viewer, runner or maintainer.")
    else:
        try:
            change_role(member, form.cleaned_data["role"], actor=request.user)
        except MembershipError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"{member.user.username} is now {member.get_role_display().lower()}.")
    return redirect("scenarios-members", slug=project.slug)


@require_POST
def member_remove(request, slug, member_id):
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    member = _member_of(project, member_id)
    try:
        remove_member(member, actor=request.user)
    except MembershipError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{member.user.username} was removed from {project.name}.")
    if member.user_id == request.user.id and not Membership.objects.filter(pk=member.pk).exists():
        return redirect("scenarios-project-list")
    return redirect("scenarios-members", slug=project.slug)


def scenario_create(request, slug):
    project, membership = get_project_for_user(request, slug, Role.MAINTAINER)
    too_large = _oversized_upload(request)
    if too_large:
        form = NewScenarioForm(project=project)
        return render(request, "scenarios/scenario_form.html",
                      {"form": form, "project": project, "membership": membership, "upload_error": too_large},
                      status=413)
    form = NewScenarioForm(request.POST or None, request.FILES or None, project=project)
    if request.method == "POST" and form.is_valid():
        fields = {name: value for name, value in form.cleaned_data.items() if name != "locustfile"}
        scenario = create_scenario(
            project, fields=fields, bundle=form.bundle, filename=form.cleaned_data["locustfile"].name,
            findings=form.findings, user=request.user,
        )
        messages.success(request, f"Scenario {scenario.name} created with locustfile version 1.")
        return redirect(scenario)
    return render(
        request, "scenarios/scenario_form.html", {"form": form, "project": project, "membership": membership}
    )


def scenario_detail(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id)
    versions = list(scenario.versions.select_related("uploaded_by").defer("content"))
    current = scenario.versions.first()  # newest; loaded with its content to show the source
    upload_form = UploadVersionForm() if membership.allows(Role.MAINTAINER) else None
    return render(
        request,
        "scenarios/scenario_detail.html",
        {"scenario": scenario, "project": scenario.project, "membership": membership, "versions": versions,
         "version": current, "locustfile_host": current.locustfile_host if current else "",
         "upload_form": upload_form, "can_run": membership.allows(Role.RUNNER),
         "runs": scenario.runs.with_peak_users().select_related("created_by", "scenario", "stop_requested_by")
         .defer("stats_blob", "totals")[:10],
         **_source_context(request, current)},
    )


def scenario_edit(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    form = ScenarioForm(request.POST or None, instance=scenario, project=scenario.project)
    if request.method == "POST" and form.is_valid():
        form.save()
        record("scenario.edited", actor=request.user, project=scenario.project, subject=f"scenario {scenario.name}",
               details={"scenario": scenario.pk, "changed": sorted(form.changed_data)})
        messages.success(request, "Scenario saved.")
        return redirect(scenario)
    return render(
        request,
        "scenarios/scenario_form.html",
        {"form": form, "project": scenario.project, "scenario": scenario, "membership": membership},
    )


def scenario_delete(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    if request.method == "POST":
        project = scenario.project
        scenario_id = scenario.pk
        scenario.delete()
        record("scenario.deleted", actor=request.user, project=project, subject=f"scenario {scenario.name}",
               details={"scenario": scenario_id})
        messages.success(request, f"Scenario {scenario.name} and its locustfile versions were deleted.")
        return redirect(project)
    return render(
        request, "scenarios/scenario_delete.html",
        {"scenario": scenario, "project": scenario.project, "membership": membership},
    )


def version_upload(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    too_large = _oversized_upload(request)
    if too_large:
        return render(request, "scenarios/version_upload.html",
                      {"form": UploadVersionForm(), "scenario": scenario, "project": scenario.project,
                       "membership": membership, "upload_error": too_large}, status=413)
    form = UploadVersionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        duplicate = same_as_current(scenario, form.bundle)
        if duplicate:
            form.add_error("locustfile", duplicate)
    if request.method == "POST" and form.is_valid():
        version = add_version(
            scenario, bundle=form.bundle, filename=form.cleaned_data["locustfile"].name,
            findings=form.findings, user=request.user, comment=form.cleaned_data["comment"],
        )
        messages.success(request, f"Uploaded version {version.number} of {scenario.name}.")
        return redirect(scenario)
    return render(
        request,
        "scenarios/version_upload.html",
        {"form": form, "scenario": scenario, "project": scenario.project, "membership": membership},
        status=400 if request.method == "POST" else 200,
    )


def version_detail(request, scenario_id, number):
    version, membership = get_version_for_user(request, scenario_id, number)
    scenario = version.scenario
    latest = scenario.versions.values_list("number", flat=True).first()
    return render(
        request,
        "scenarios/version_detail.html",
        {"scenario": scenario, "project": scenario.project, "membership": membership, "version": version,
         "latest_number": latest,
         **_source_context(request, version)},
    )


def version_download(request, scenario_id, number):
    version, _ = get_version_for_user(request, scenario_id, number)
    content_type = "application/zip" if version.kind == "zip" else "text/x-python; charset=utf-8"
    response = HttpResponse(bytes(version.content), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{version.download_name()}"'
    response["X-Content-SHA256"] = version.sha256
    return response


# A multipart body a little over the largest allowed file (form fields, boundaries).
UPLOAD_REQUEST_LIMIT = bundles.MAX_ZIP_BYTES + 1024 * 1024


def _oversized_upload(request) -> str | None:
    """Refuse a huge upload from its Content-Length, before Django parses the body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if request.method == "POST" and length > UPLOAD_REQUEST_LIMIT:
        return (f"The upload is {length / 1048576:.1f} MB. Swarmdeck takes a .py locustfile of up to "
                f"{bundles.MAX_PY_BYTES // 1048576} MB or a .zip bundle of up to "
                f"{bundles.MAX_ZIP_BYTES // 1048576} MB.")
    return None


def _source_context(request, version) -> dict:
    """The bundle's file list and the selected file (?file=path, default locustfile.py) rendered."""
    if version is None:
        return {}
    base = reverse("scenarios-version", args=[version.scenario_id, version.number])
    try:
        bundle = bundles.open_stored(version.kind, bytes(version.content))
    except bundles.BundleError as error:
        # Stored before a rule was tightened (or damaged since): say why rather than fail the page.
        note = f"This version can no longer be opened: {error.message}"
        return {"files": [], "selected_file": bundles.ENTRY_POINT, "rendered": {"html": None, "note": note},
                "version_url": base}
    selected = request.GET.get("file") or bundles.ENTRY_POINT
    if selected not in bundle.files:
        selected = bundles.ENTRY_POINT
    files = [{"path": path, "size": len(data), "selected": path == selected}
             for path, data in sorted(bundle.files.items())]
    return {"files": files, "selected_file": selected, "rendered": render_file(selected, bundle.files[selected]),
            "version_url": base}
