from django.contrib import admin

from audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: an audit trail that the admin could edit would prove nothing."""

    list_display = ("at", "actor_name", "interface", "project_slug", "action", "subject")
    list_filter = ("action", "interface")
    search_fields = ("actor_name", "project_slug", "action", "subject")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
