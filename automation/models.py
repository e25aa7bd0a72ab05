"""Recurring runs (schedules fired by Celery beat) and per-project webhooks with their deliveries."""

import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from automation import cron
from scenarios.models import Project, Scenario


class ScheduleQuerySet(models.QuerySet):
    def for_user(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(scenario__project__memberships__user=user)


class Schedule(models.Model):
    """A scenario started on a cron timetable. Beat fires its linked PeriodicTask; the control
    worker runs automation.tasks.fire_schedule, which starts the run (or records a skip).

    Create and change schedules only with automation.schedules.save_schedule: beat reads only
    django-celery-beat's tables, and neither save() nor QuerySet.update() touches them. Deleting
    (also by cascade from the scenario) removes the PeriodicTask: automation.receivers."""

    class Preset(models.TextChoices):
        CUSTOM = "custom", "Cron expression"
        HOURLY = "hourly", f"Hourly ({cron.PRESETS['hourly']})"
        NIGHTLY = "nightly", f"Nightly at 02:00 ({cron.PRESETS['nightly']})"
        WEEKLY = "weekly", f"Weekly, Monday 02:00 ({cron.PRESETS['weekly']})"

    class Overlap(models.TextChoices):
        SKIP = "skip", "Skip the fire while a run of this scenario is active"
        QUEUE = "queue", "Queue a new run anyway"

    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100)
    preset = models.CharField(max_length=10, choices=Preset.choices, default=Preset.CUSTOM)
    cron = models.CharField(max_length=120, help_text="minute hour day-of-month month day-of-week")
    timezone = models.CharField(max_length=64, default="UTC")
    # Tests and the admin only: fire every N seconds instead of on the cron expression.
    every_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Overrides of the scenario's run defaults; empty means "the scenario's default at fire time".
    users = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    spawn_rate = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.01)])
    duration = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1),
                                                                                MaxValueValidator(7 * 24 * 3600)])
    host = models.URLField(max_length=500, blank=True)
    slots = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    # The locustfile's own command-line options (scenarios.options), by dest; left out: its default.
    options = models.JSONField(default=dict, blank=True)
    # Environment variables its runs override or add (workers.envvars); never a secret.
    env = models.JSONField(default=dict, blank=True)
    # Labels its runs carry (runs/labels.py), e.g. {"env": "staging"}: frozen on each run it starts.
    labels = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    overlap = models.CharField(max_length=5, choices=Overlap.choices, default=Overlap.SKIP)
    periodic_task = models.OneToOneField(PeriodicTask, null=True, blank=True, editable=False,
                                         on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["scenario", "name"], name="unique_schedule_name_per_scenario")]

    def __str__(self):
        return f"{self.name} ({self.scenario})"

    def get_absolute_url(self):
        return reverse("automation-schedule", args=[self.pk])

    def overrides(self) -> dict:
        """Run parameters this schedule sets; the rest come from the scenario when it fires."""
        values = {"users": self.users, "spawn_rate": self.spawn_rate, "duration": self.duration,
                  "host": self.host or None, "slots": self.slots}
        values["options"] = dict(self.options or {}) or None
        values["env"] = dict(self.env or {}) or None
        return {key: value for key, value in values.items() if value is not None}

    @property
    def timing(self) -> str:
        if self.every_seconds:
            return f"every {self.every_seconds} s"
        return f"{self.cron} ({self.timezone})"


class ScheduleSkip(models.Model):
    """A fire that started no run: the scenario was still busy, or the run could not start."""

    class Kind(models.TextChoices):
        OVERLAP = "overlap", "Previous run still active"
        ERROR = "error", "Could not start"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="skips")
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.OVERLAP)
    reason = models.TextField()
    active_run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.schedule.name} skipped at {self.at:%Y-%m-%d %H:%M}: {self.reason}"


class Event(models.TextChoices):
    RUN_FINISHED = "run.finished", "Run finished"
    RUN_FAILED = "run.failed", "Run failed"
    THRESHOLD_BROKEN = "threshold.broken", "Threshold broken"


def new_secret() -> str:
    return secrets.token_hex(32)


class Webhook(models.Model):
    """A URL that receives signed JSON about a project's runs."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, default=new_secret, editable=False)
    events = models.JSONField(default=list, help_text="Event names this webhook receives")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.url

    def get_absolute_url(self):
        return reverse("automation-webhook", args=[self.pk])

    @property
    def short_url(self) -> str:
        """Scheme and host only: the path of e.g. a chat webhook URL is itself a secret."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/…" if parts.path.strip("/") or parts.query else self.url

    def event_labels(self) -> list[str]:
        return [Event(event).label for event in self.events if event in Event.values]


class WebhookDelivery(models.Model):
    """One event for one webhook: a fixed payload, tried until delivered or out of attempts."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Gave up"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event = models.CharField(max_length=20, choices=Event.choices)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.event} to {self.webhook_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One POST of a delivery, as the receiver answered it."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="one_row_per_delivery_attempt")]
