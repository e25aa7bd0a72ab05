from django.contrib import admin

from targets.models import AllowedTarget


@admin.register(AllowedTarget)
class AllowedTargetAdmin(admin.ModelAdmin):
    list_display = ["pattern", "project", "kind", "status", "proposed_by", "decided_by", "verified_by"]
    list_filter = ["status", "kind"]
    search_fields = ["pattern", "project__name"]
    readonly_fields = ["token"]
