"""A project's share of the cluster: its quotas and its weight in the fair queue (sharing.queue)."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from scenarios.models import Project


class Quota(models.Model):
    """Caps an admin sets on one project; an empty field falls back to the site-wide default
    (settings.SWARMDECK_QUOTA_DEFAULTS), and an empty default means no limit."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="quota")
    max_slots_per_run = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Slots one run may ask for")
    max_concurrent_slots = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Slots the project's runs may hold at once; more runs wait in the queue")
    max_duration = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Longest run, in seconds")
    max_users_per_slot = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Users on one slot")
    monthly_slot_hours = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.01)],
        help_text="Slot-hours per calendar month (UTC): a 2-slot run of 30 minutes uses 1")
    weight = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Share in the fair queue: a project of weight 2 gets twice the slot time of one of weight 1")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    def __str__(self):
        return f"Quota of {self.project}"
