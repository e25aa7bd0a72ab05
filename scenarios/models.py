"""Projects, their members, scenarios and immutable locustfile versions."""

import hashlib

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    RUNNER = "runner", "Runner"
    MAINTAINER = "maintainer", "Maintainer"


ROLE_RANK = {Role.VIEWER: 1, Role.RUNNER: 2, Role.MAINTAINER: 3}
ROLE_HELP = {
    Role.VIEWER: "sees scenarios, runs and reports",
    Role.RUNNER: "also starts and stops runs",
    Role.MAINTAINER: "also uploads locustfiles, edits scenarios, schedules and members",
}


class ProjectQuerySet(models.QuerySet):
    def for_user(self, user):
        """Only the projects this user is a member of; the root of every access check."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Project(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("scenarios-project-detail", args=[self.slug])

    def maintainer_count(self) -> int:
        return self.memberships.filter(role=Role.MAINTAINER).count()


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="one_membership_per_user_and_project")]
        ordering = ["user__username"]

    def __str__(self):
        return f"{self.user} in {self.project} ({self.role})"

    def allows(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class Scenario(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="scenarios")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    default_host = models.URLField(
        max_length=500, blank=True, help_text="Base URL of the system under test, e.g. http://127.0.0.1:8089"
    )
    default_users = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)]
    )
    default_spawn_rate = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.01), MaxValueValidator(100_000)],
        help_text="Users started per second",
    )
    default_duration = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 3600)], help_text="Seconds"
    )
    default_slots = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Worker slots (one CPU core each)",
    )
    # Environment variables the pool gets (workers.envvars checks the names), visible to members.
    env_vars = models.JSONField(default=dict, blank=True, help_text="Environment variables: name -> value")
    # Names of project secrets the pool gets as environment variables (values: ProjectSecret).
    secret_names = models.JSONField(default=list, blank=True, help_text="Project secrets it receives, by name")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_scenario_name_per_project")]
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("scenarios-detail", args=[self.pk])

    @property
    def current_version(self):
        """The newest upload; runs reference the exact version they ran, not this."""
        return self.versions.order_by("-number").first()


class LocustfileVersion(models.Model):
    """One uploaded locustfile or bundle. Immutable once stored."""

    class Kind(models.TextChoices):
        PY = "py", "Python file"
        ZIP = "zip", "Zip bundle"

    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=3, choices=Kind.choices)
    filename = models.CharField(max_length=255, help_text="Name of the uploaded file")
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField(help_text="Bytes as uploaded")
    unpacked_size = models.PositiveIntegerField(help_text="Bytes of all files once unpacked")
    file_count = models.PositiveIntegerField(default=1)
    findings = models.JSONField(default=dict, help_text="Static analysis: user classes, tasks, shape, warnings")
    comment = models.CharField(max_length=200, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="locustfile_versions"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scenario", "number"], name="unique_version_number_per_scenario")
        ]
        ordering = ["-number"]

    def __str__(self):
        return f"{self.scenario} v{self.number}"

    def get_absolute_url(self):
        return reverse("scenarios-version", args=[self.scenario_id, self.number])

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("A locustfile version is immutable: upload a new version instead.")
        self.sha256 = hashlib.sha256(bytes(self.content)).hexdigest()
        self.size = len(self.content)
        super().save(*args, **kwargs)

    @property
    def short_sha(self) -> str:
        return self.sha256[:12]

    @property
    def locustfile_host(self) -> str:
        """The first `host` a user class sets, or "": a run without a host of its own uses it."""
        return next((uc["host"] for uc in self.findings.get("user_classes", []) if uc.get("host")), "")

    def download_name(self) -> str:
        stem = self.scenario.name.lower().replace(" ", "-") or "locustfile"
        return f"{stem}-v{self.number}.{self.kind}"


class ProjectSecret(models.Model):
    """A secret of a project, write-only: its value is stored encrypted (scenarios.secrets) and never shown."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=100)
    ciphertext = models.TextField(help_text="Fernet token (scenarios.secrets); never the value in clear")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_secret_name_per_project")]
        ordering = ["name"]

    def __str__(self):
        return f"{self.project} secret {self.name}"
