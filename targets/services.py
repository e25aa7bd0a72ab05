"""Changes to allow lists, each recorded in the audit log."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.log import record
from targets import proof
from targets.models import AllowedTarget
from workers.target_rules import Pattern


def _audit(action: str, entry: AllowedTarget, user, **details) -> None:
    record(f"target.{action}", actor=user, project=entry.project, subject=f"allowed target {entry.pattern}",
           details={"target": entry.pk, "pattern": entry.pattern, "kind": entry.kind, **details})


def propose(project, pattern: Pattern, user, note: str = "") -> AllowedTarget:
    """A maintainer's proposal; a pattern rejected before is proposed again (with a new token)."""
    with transaction.atomic():
        entry = AllowedTarget.objects.select_for_update().filter(project=project, pattern=pattern.text).first()
        if entry is None:
            entry = AllowedTarget(project=project, pattern=pattern.text)
        else:
            entry.token = AllowedTarget._meta.get_field("token").default()
        entry.kind = pattern.kind
        entry.status = AllowedTarget.Status.PROPOSED
        entry.note = note[:500]
        entry.proposed_by = user
        entry.proposed_at = timezone.now()
        entry.decided_by, entry.decided_at, entry.decision_note, entry.verified_by = None, None, "", ""
        entry.last_check = ""
        entry.save()
    _audit("proposed", entry, user, note=entry.note)
    return entry


def approve(entry: AllowedTarget, user, note: str = "") -> None:
    entry.mark(AllowedTarget.Status.APPROVED, by=user, note=note)
    _audit("approved", entry, user, note=note)


def reject(entry: AllowedTarget, user, note: str = "") -> None:
    entry.mark(AllowedTarget.Status.REJECTED, by=user, note=note)
    _audit("rejected", entry, user, note=note)


def delete(entry: AllowedTarget, user) -> None:
    _audit("deleted", entry, user, status=entry.status)
    entry.delete()


def verify(entry: AllowedTarget, user) -> proof.Result:
    """Check the entry's proof of control; a proof found approves it (decided_by empty: no admin did)."""
    result = proof.check(entry)
    AllowedTarget.objects.filter(pk=entry.pk).update(last_check=result.summary[:500])
    entry.last_check = result.summary[:500]
    if result.proven and entry.status != AllowedTarget.Status.APPROVED:
        entry.mark(AllowedTarget.Status.APPROVED, note=f"proof of control: {result.summary}", verified_by=result.method)
        _audit("approved", entry, user, proof=result.method, note=result.summary)
    return result
