from django.urls import path

from automation import views

urlpatterns = [
    path("scenarios/<int:scenario_id>/schedules/new/", views.schedule_create, name="automation-schedule-create"),
    path("schedules/<int:schedule_id>/", views.schedule_detail, name="automation-schedule"),
    path("schedules/<int:schedule_id>/edit/", views.schedule_edit, name="automation-schedule-edit"),
    path("schedules/<int:schedule_id>/toggle/", views.schedule_toggle, name="automation-schedule-toggle"),
    path("schedules/<int:schedule_id>/delete/", views.schedule_delete, name="automation-schedule-delete"),
    path("p/<slug:slug>/webhooks/", views.webhook_list, name="automation-webhooks"),
    path("webhooks/<int:webhook_id>/", views.webhook_detail, name="automation-webhook"),
    path("webhooks/<int:webhook_id>/edit/", views.webhook_edit, name="automation-webhook-edit"),
    path("webhooks/<int:webhook_id>/secret/", views.webhook_new_secret, name="automation-webhook-secret"),
    path("webhooks/<int:webhook_id>/ping/", views.webhook_ping, name="automation-webhook-ping"),
    path("webhooks/<int:webhook_id>/delete/", views.webhook_delete, name="automation-webhook-delete"),
]
