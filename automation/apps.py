from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Schedules and notifications"
    default_auto_field = "django.db.models.BigAutoField"
