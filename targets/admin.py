from django.contrib import admin

from audit.log import record
from targets.models import AllowedTarget


@admin.register(AllowedTarget)
class AllowedTargetAdmin(admin.ModelAdmin):
    list_display = ["pattern", "project", "kind", "status", "proposed_by", "decided_by", "verified_by"]
    list_filter = ["status", "kind"]
    search_fields = ["pattern", "project__name"]
    readonly_fields = ["token"]

    def save_model(self, request, obj, form, change):
        """An entry added or changed in the Django admin is audited like one decided on the proposals page."""
        super().save_model(request, obj, form, change)
        record("target.changed" if change else "target.added", actor=request.user, project=obj.project,
               subject=f"target {obj.pattern}", details={"status": obj.status, "where": "Django admin",
                                                         "fields": sorted(form.changed_data)})

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        record("target.deleted", actor=request.user, project=obj.project, subject=f"target {obj.pattern}",
               details={"where": "Django admin"})
