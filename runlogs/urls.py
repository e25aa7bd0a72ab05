from django.urls import path

from runlogs import views

urlpatterns = [
    path("runs/<int:run_id>/logs.json", views.logs_json, name="runlogs-json"),
    path("runs/<int:run_id>/logs.txt", views.logs_text, name="runlogs-text"),
]
