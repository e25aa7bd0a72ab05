from django.contrib import admin

from runs.models import Run, RunSlot


class RunSlotInline(admin.TabularInline):
    model = RunSlot
    extra = 0
    can_delete = False
    readonly_fields = ["index", "status", "worker", "host", "pid", "users", "requests", "last_seq", "last_seen", "error"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "scenario", "project", "status", "trigger", "total_requests", "total_failures", "created_at"]
    list_filter = ["status", "trigger", "project"]
    exclude = ["stats_blob"]
    readonly_fields = ["totals", "errors", "exceptions", "history", "params", "token"]
    inlines = [RunSlotInline]
