from django.contrib import admin

from scenarios.models import LocustfileVersion, Membership, Project, Scenario


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "default_users", "default_slots", "updated_at"]
    list_filter = ["project"]
    search_fields = ["name"]


@admin.register(LocustfileVersion)
class LocustfileVersionAdmin(admin.ModelAdmin):
    """Read-only: versions are immutable, and runs will point at them."""

    list_display = ["scenario", "number", "kind", "filename", "short_sha", "size", "uploaded_by", "uploaded_at"]
    list_filter = ["kind"]
    exclude = ["content"]
    readonly_fields = [f.name for f in LocustfileVersion._meta.fields if f.name != "content"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
