"""The quota form admins fill in; an empty field falls back to the site default (no limit without one)."""

from django import forms

from sharing.models import Quota


class QuotaForm(forms.ModelForm):
    class Meta:
        model = Quota
        fields = ["max_slots_per_run", "max_concurrent_slots", "max_duration", "max_users_per_slot",
                  "monthly_slot_hours", "weight"]
        labels = {"max_duration": "Max duration (seconds)", "monthly_slot_hours": "Slot-hours per month"}
