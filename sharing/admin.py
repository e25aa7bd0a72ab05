from django.contrib import admin

from audit.log import record
from sharing import quotas
from sharing.models import Quota


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ("project", "max_slots_per_run", "max_concurrent_slots", "max_duration", "max_users_per_slot",
                    "monthly_slot_hours", "weight", "updated_at")
    search_fields = ("project__name", "project__slug")

    def save_model(self, request, obj, form, change):
        """A quota set in the Django admin is audited like one set on the Usage page."""
        before = quotas.values(Quota.objects.filter(pk=obj.pk).first() if obj.pk else None)
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
        after = quotas.values(obj)
        record("quota.changed", actor=request.user, project=obj.project, subject=f"quota of {obj.project.name}",
               details={"changed": quotas.changes(before, after), "where": "Django admin"})

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        record("quota.deleted", actor=request.user, project=obj.project, subject=f"quota of {obj.project.name}",
               details={"where": "Django admin"})
