from django.contrib import admin

from automation import schedules
from automation.models import Schedule, ScheduleSkip, Webhook, WebhookAttempt, WebhookDelivery


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    """Also the place for `every_seconds` (fire every N seconds), which the UI does not offer."""

    list_display = ["name", "scenario", "cron", "timezone", "every_seconds", "enabled", "overlap"]
    list_filter = ["enabled", "overlap"]
    # Set on the schedule's page, which checks them against the locustfile and never shows a secret one.
    exclude = ["options"]

    def save_model(self, request, obj, form, change):
        schedules.save_schedule(obj)  # with its PeriodicTask; deleting removes it (automation.receivers)


@admin.register(ScheduleSkip)
class ScheduleSkipAdmin(admin.ModelAdmin):
    list_display = ["schedule", "at", "kind", "reason"]


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ["url", "project", "enabled"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["webhook", "event", "run", "state", "attempts", "last_status_code", "delivered_at"]
    list_filter = ["state", "event"]
    inlines = [WebhookAttemptInline]
