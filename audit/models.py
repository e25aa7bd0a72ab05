"""One row per change: who, when, from which interface, in which project, what."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntryQuerySet(models.QuerySet):
    def for_user(self, user):
        """Staff see every entry; everyone else only the entries of projects they maintain."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        from scenarios.models import Role

        return self.filter(project__memberships__user=user, project__memberships__role=Role.MAINTAINER)


class AuditEntry(models.Model):
    """Written only by audit.log.record(); the names are stored too, so an entry still reads after
    its user or project is deleted."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, blank=True, help_text="Username when recorded; empty: the system")
    interface = models.CharField(max_length=120, default="system",
                                 help_text='"ui", "api:<token name>", "schedule:<id>", "cli" or "system"')
    project = models.ForeignKey("scenarios.Project", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    project_name = models.CharField(max_length=100, blank=True)
    project_slug = models.CharField(max_length=60, blank=True)
    action = models.CharField(max_length=60, db_index=True, help_text='Dotted, e.g. "run.started"')
    subject = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="Facts of the change; never a secret's value")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["project", "-at"], name="audit_project_at")]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action} {self.subject}"
