"""The quota form admins fill in; an empty field falls back to the site default (no limit without one)."""

from django import forms

from scenarios.forms import DurationField
from sharing.models import Quota


class QuotaForm(forms.ModelForm):
    max_duration = DurationField(required=False, label="Max duration",
                                 help_text="Longest run, typed like the run form's duration: 90, 30s, 5m, 1h30m")

    class Meta:
        model = Quota
        fields = ["max_slots_per_run", "max_concurrent_slots", "max_duration", "max_users_per_slot",
                  "monthly_slot_hours", "weight"]
        labels = {"monthly_slot_hours": "Slot-hours per month"}
