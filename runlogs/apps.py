from django.apps import AppConfig


class RunLogsConfig(AppConfig):
    name = "runlogs"
    verbose_name = "Run logs"
