from django.urls import path

from sharing import views

urlpatterns = [
    path("p/<slug:slug>/usage/", views.project_usage, name="sharing-usage"),
    path("usage/", views.all_usage, name="sharing-all-usage"),
]
