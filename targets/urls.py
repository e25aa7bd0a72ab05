from django.urls import path

from targets import views

urlpatterns = [
    path("p/<slug:slug>/targets/", views.target_list, name="targets-list"),
    path("p/<slug:slug>/targets/<int:target_id>/delete/", views.target_delete, name="targets-delete"),
    path("p/<slug:slug>/targets/<int:target_id>/verify/", views.target_verify, name="targets-verify"),
    path("targets/pending/", views.pending, name="targets-pending"),
    path("targets/<int:target_id>/decide/", views.decide, name="targets-decide"),
]
