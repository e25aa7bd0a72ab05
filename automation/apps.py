from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Schedules and notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Receivers for run events; the tasks module registers the control-queue tasks with the
        # Celery app in every process that sets up Django (web, collector, beat, control worker).
        from automation import receivers, tasks  # noqa: F401
