from django.urls import path

from audit import views

urlpatterns = [
    path("audit/", views.site_log, name="audit-site"),
    path("audit/export.csv", views.site_log_csv, name="audit-site-csv"),
    path("p/<slug:slug>/audit/", views.project_log, name="audit-project"),
    path("p/<slug:slug>/audit/export.csv", views.project_log_csv, name="audit-project-csv"),
]
