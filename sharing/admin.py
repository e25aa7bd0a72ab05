from django.contrib import admin

from sharing.models import Quota


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ("project", "max_slots_per_run", "max_concurrent_slots", "max_duration", "max_users_per_slot",
                    "monthly_slot_hours", "weight", "updated_at")
    search_fields = ("project__name", "project__slug")
