"""Fetch objects *for this user*: 404 outside their projects, 403 above their role.

Every view that touches project data goes through one of these helpers, so an outsider
cannot even learn that another project's object exists.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from scenarios.models import LocustfileVersion, Membership, Project, Role, Scenario


def _membership_or_404(user, project) -> Membership:
    membership = Membership.objects.filter(user=user, project=project).first() if user.is_authenticated else None
    if membership is None:
        raise Http404("No such project.")
    return membership


def _require(membership: Membership, role: str) -> None:
    if not membership.allows(role):
        raise PermissionDenied(f"This needs the {Role(role).label.lower()} role in {membership.project.name}.")


def get_project_for_user(request, slug: str, role: str = Role.VIEWER) -> tuple[Project, Membership]:
    project = Project.objects.for_user(request.user).filter(slug=slug).first()
    if project is None:
        raise Http404("No such project.")
    membership = _membership_or_404(request.user, project)
    _require(membership, role)
    return project, membership


def get_scenario_for_user(request, scenario_id: int, role: str = Role.VIEWER) -> tuple[Scenario, Membership]:
    scenario = (
        Scenario.objects.select_related("project")
        .filter(pk=scenario_id, project__memberships__user=request.user)
        .first()
        if request.user.is_authenticated
        else None
    )
    if scenario is None:
        raise Http404("No such scenario.")
    membership = _membership_or_404(request.user, scenario.project)
    _require(membership, role)
    return scenario, membership


def get_version_for_user(request, scenario_id: int, number: int) -> tuple[LocustfileVersion, Membership]:
    scenario, membership = get_scenario_for_user(request, scenario_id)
    version = scenario.versions.filter(number=number).select_related("uploaded_by").first()
    if version is None:
        raise Http404("No such locustfile version.")
    return version, membership
