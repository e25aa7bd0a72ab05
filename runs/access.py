from django.core.exceptions import PermissionDenied
from django.http import Http404

from runs.models import Run
from scenarios.models import Membership, Role


def get_run_for_user(request, run_id: int, role: str = Role.VIEWER) -> tuple[Run, Membership]:
    """The run if the user is a member of its project (else 404) with at least `role` (else 403)."""
    run = (Run.objects.for_user(request.user).select_related("project", "scenario", "version", "created_by")
           .filter(pk=run_id).first())
    if run is None:
        raise Http404("No such run.")
    membership = Membership.objects.get(user=request.user, project=run.project)
    if not membership.allows(role):
        raise PermissionDenied(f"This needs the {Role(role).label.lower()} role in {run.project.name}.")
    return run, membership
