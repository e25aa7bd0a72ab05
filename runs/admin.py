import json

from django.contrib import admin

from runs.models import Run, RunSlot, Threshold
from scenarios.options import masked_params


class RunSlotInline(admin.TabularInline):
    model = RunSlot
    extra = 0
    can_delete = False
    readonly_fields = ["index", "status", "worker", "host", "pid", "users", "requests", "last_seq", "last_seen",
                       "error"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "scenario", "project", "status", "trigger", "total_requests", "total_failures", "created_at"]
    list_filter = ["status", "trigger", "project"]
    exclude = ["stats_blob", "params"]
    readonly_fields = ["totals", "errors", "exceptions", "history", "shown_params", "token", "verdict_details"]
    inlines = [RunSlotInline]

    @admin.display(description="Params")
    def shown_params(self, run):
        """The frozen parameters with secret locustfile options masked, as everywhere else."""
        return json.dumps(masked_params(run.params), indent=1, sort_keys=True)


@admin.register(Threshold)
class ThresholdAdmin(admin.ModelAdmin):
    list_display = ["id", "scenario", "metric", "endpoint", "value", "abort_on_fail", "grace_seconds", "enabled"]
    list_filter = ["metric", "enabled"]
