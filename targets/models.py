"""A project's allowed targets: hosts, *.wildcards and CIDR ranges its runs may send requests to.

Maintainers propose entries; an admin (is_staff) approves or rejects them, or a maintainer's exact
host is approved by proof of control (targets/proof.py). Only approved entries count.
"""

import ipaddress
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from workers import target_rules


def new_token() -> str:
    return secrets.token_hex(16)


class AllowedTargetQuerySet(models.QuerySet):
    def approved(self):
        return self.filter(status=AllowedTarget.Status.APPROVED)


class AllowedTarget(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    class Kind(models.TextChoices):
        HOST = target_rules.HOST, "Host"
        WILDCARD = target_rules.WILDCARD, "Wildcard"
        CIDR = target_rules.CIDR, "CIDR range"

    project = models.ForeignKey("scenarios.Project", on_delete=models.CASCADE, related_name="allowed_targets")
    pattern = models.CharField(max_length=target_rules.MAX_PATTERN, help_text="Normalised (workers.target_rules)")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    note = models.CharField(max_length=500, blank=True, help_text="Why it is needed (the proposer's words)")
    decision_note = models.CharField(max_length=500, blank=True,
                                     help_text="Why it was rejected, or how it was approved")
    token = models.CharField(max_length=64, default=new_token, help_text="For proof of control (exact hosts)")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", help_text="The admin who approved or rejected it")
    decided_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.CharField(max_length=20, blank=True,
                                   help_text='"http": approved by proof of control (targets.proof), not by an admin')
    last_check = models.CharField(max_length=500, blank=True, help_text="What the latest proof check found")

    objects = AllowedTargetQuerySet.as_manager()

    class Meta:
        ordering = ["pattern"]
        constraints = [models.UniqueConstraint(fields=["project", "pattern"], name="targets_unique_pattern")]

    def __str__(self):
        return f"{self.pattern} ({self.get_status_display().lower()})"

    @property
    def provable(self) -> bool:
        """Proof of control is for exact host names and addresses, not wildcards or ranges."""
        return self.kind == self.Kind.HOST

    @property
    def internal(self) -> bool:
        """An exact loopback, private or link-local address (or localhost): the proof check cannot fetch from it
        (unless SWARMDECK_WEBHOOK_ALLOW_PRIVATE), so the page does not offer it."""
        if self.kind != self.Kind.HOST or getattr(settings, "SWARMDECK_WEBHOOK_ALLOW_PRIVATE", False):
            return False
        host = self.pattern.rsplit(":", 1)[0] if self.pattern.count(":") == 1 else self.pattern
        host = host.strip("[]").lower()
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return not ipaddress.ip_address(host).is_global
        except ValueError:
            return False  # a name: where it resolves is checked when it is fetched

    @property
    def proof_path(self) -> str:
        return f"/.well-known/swarmdeck-{self.token}.txt"

    def mark(self, status: str, *, by=None, note: str = "", verified_by: str = "") -> None:
        self.status = status
        self.decided_by = by
        self.decided_at = timezone.now()
        self.decision_note = note[:500]
        self.verified_by = verified_by
        self.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "verified_by"])
