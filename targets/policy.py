"""Where the allow list is enforced at start: the run's host against its project's approved entries.

Settings (controlcenter/settings.py): SWARMDECK_TARGET_ALLOW_LIST (default on; off for a single-team
install: every host is allowed) and SWARMDECK_ALLOW_LOOPBACK_TARGETS (loopback without an entry;
on with DEBUG=1 and under `make run`, off in production).
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from runs.services import RunError
from targets.models import AllowedTarget
from workers.target_rules import Rules


class TargetNotAllowed(RunError):
    """The run's host is not on its project's allow list; the API answers 400 on the field `host`."""

    field = "host"

    def __init__(self, message: str, host: str):
        super().__init__(message)
        self.host = host


def enforced() -> bool:
    return bool(getattr(settings, "SWARMDECK_TARGET_ALLOW_LIST", True))


def loopback_allowed() -> bool:
    return bool(getattr(settings, "SWARMDECK_ALLOW_LOOPBACK_TARGETS", False))


def approved_patterns(project) -> list[str]:
    return list(AllowedTarget.objects.approved().filter(project=project).values_list("pattern", flat=True))


def rules_for(project) -> Rules:
    return Rules(approved_patterns(project), allow_loopback=loopback_allowed())


def pool_targets(project) -> dict | None:
    """What a slot's pool enforces (workers/pool_target_guard.py); None: enforcement is off."""
    if not enforced():
        return None
    return {"patterns": approved_patterns(project), "loopback": loopback_allowed()}


def refusal_message(project, host: str) -> str:
    page = reverse("targets-list", args=[project.slug])
    return (f"{host} is not on the allowed targets of {project.name}: a maintainer proposes it on the project's "
            f"Allowed targets page ({page}) and an admin approves it (or it is proven there by a file on the host).")


def unlisted_host(project, url: str) -> str | None:
    """The host of `url` to name when it is outside the project's allow list, else None."""
    if not enforced() or not url:
        return None
    return rules_for(project).refusal(url)


def check_run_target(project, url: str) -> None:
    """Raise TargetNotAllowed when a run of `project` may not target `url` (the run's or the locustfile's host)."""
    host = unlisted_host(project, url)
    if host is not None:
        raise TargetNotAllowed(refusal_message(project, host), host)
