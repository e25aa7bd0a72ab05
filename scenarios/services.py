"""Operations that span several rows: creating projects, storing versions, managing members."""

import hashlib

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max

from audit.log import record
from scenarios.bundles import Bundle
from scenarios.models import LocustfileVersion, Membership, Project, Role, Scenario


class MembershipError(Exception):
    """A member change that would break the project (e.g. removing its last maintainer)."""


@transaction.atomic
def create_project(user, *, name: str, slug: str, description: str = "") -> Project:
    """Create a project; its creator becomes its first maintainer."""
    project = Project.objects.create(name=name, slug=slug, description=description, created_by=user)
    Membership.objects.create(user=user, project=project, role=Role.MAINTAINER)
    record("project.created", actor=user, project=project, subject=f"project {project.name}",
           details={"slug": project.slug})
    return project


def findings_with_files(findings: dict, bundle: Bundle) -> dict:
    files = [{"path": path, "size": len(data)} for path, data in sorted(bundle.files.items())]
    return {**findings, "files": files, "ignored": list(bundle.ignored)}


@transaction.atomic
def add_version(
    scenario: Scenario, *, bundle: Bundle, filename: str, findings: dict, user, comment: str = "",
    raw: bytes | None = None,
) -> LocustfileVersion:
    """Store an accepted upload as the scenario's next immutable version.

    What is stored is `bundle.content`: the upload itself, or for a zip with ignored members or
    a wrapping folder the re-pack of exactly the files the UI shows. `raw` (the bytes as
    uploaded) is accepted for older callers and not stored.
    """
    if not bundle.content:
        raise ValueError("The bundle has no content to store; build it with scenarios.bundles.read_upload.")
    # Lock the scenario row so two simultaneous uploads cannot take the same number.
    Scenario.objects.select_for_update().filter(pk=scenario.pk).first()
    number = (scenario.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = LocustfileVersion.objects.create(
        scenario=scenario,
        number=number,
        kind=bundle.kind,
        filename=filename[:255],
        content=bundle.content,
        unpacked_size=bundle.total_size,
        file_count=len(bundle.files),
        findings=findings_with_files(findings, bundle),
        comment=comment,
        uploaded_by=user,
    )
    Scenario.objects.filter(pk=scenario.pk).update(updated_at=version.uploaded_at)
    record("locustfile.uploaded", actor=user, project=scenario.project, subject=f"{scenario.name} v{number}",
           details={"scenario": scenario.pk, "version": number, "filename": version.filename,
                    "sha256": version.sha256, "size": version.size, "comment": comment})
    return version


def same_as_current(scenario: Scenario, upload: Bundle | bytes) -> str | None:
    """Why storing `upload` would add nothing (it is the current version), or None.

    Pass the Bundle: its `content` is what add_version would store, so the sha256 compared is
    the one the new version would get (bytes are compared as they are).
    """
    content = upload.content if isinstance(upload, Bundle) else upload
    current = scenario.versions.only("number", "sha256").first()
    if current and current.sha256 == hashlib.sha256(content).hexdigest():
        return (f"This is the same file as the current version {current.number} "
                f"(sha256 {current.short_sha}…): there is nothing new to store.")
    return None


@transaction.atomic
def create_scenario(project: Project, *, fields: dict, bundle: Bundle, filename: str, findings: dict, user,
                    raw: bytes | None = None):
    scenario = Scenario.objects.create(project=project, **fields)
    record("scenario.created", actor=user, project=project, subject=f"scenario {scenario.name}",
           details={"scenario": scenario.pk})
    add_version(scenario, bundle=bundle, filename=filename, findings=findings, user=user)
    return scenario


def add_member(project: Project, *, username: str, role: str, actor=None) -> Membership:
    """`actor` (the maintainer adding them) is who the audit log names."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise MembershipError(f"There is no user named “{username}”.")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(user=user, project=project, role=role)
            record("member.added", actor=actor, project=project, subject=f"member {username}",
                   details={"user": username, "role": role})
            return membership
    except IntegrityError:
        raise MembershipError(f"{username} is already a member of {project.name}.") from None


@transaction.atomic
def change_role(membership: Membership, role: str, actor=None) -> None:
    _lock_project(membership.project)
    if membership.role == Role.MAINTAINER and role != Role.MAINTAINER and membership.project.maintainer_count() == 1:
        raise MembershipError(f"{membership.user.username} is the last maintainer of {membership.project.name}: "
                              "make someone else maintainer first.")
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    if before != role:
        record("member.role_changed", actor=actor, project=membership.project,
               subject=f"member {membership.user.username}",
               details={"user": membership.user.username, "from": before, "to": role})


@transaction.atomic
def remove_member(membership: Membership, actor=None) -> None:
    _lock_project(membership.project)
    if membership.role == Role.MAINTAINER and membership.project.maintainer_count() == 1:
        raise MembershipError(f"{membership.user.username} is the last maintainer of {membership.project.name} "
                              "and cannot be removed.")
    membership.delete()
    record("member.removed", actor=actor, project=membership.project, subject=f"member {membership.user.username}",
           details={"user": membership.user.username, "role": membership.role})


def _lock_project(project: Project) -> None:
    """Serialize member changes of one project so two maintainers cannot demote each other at once."""
    Project.objects.select_for_update().filter(pk=project.pk).first()
