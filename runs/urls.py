from django.urls import path

from runs import views

urlpatterns = [
    path("scenarios/<int:scenario_id>/runs/new/", views.run_create, name="runs-create"),
    path("runs/<int:run_id>/", views.run_detail, name="runs-detail"),
    path("runs/<int:run_id>/status.json", views.run_status, name="runs-status"),
    path("runs/<int:run_id>/stop/", views.run_stop, name="runs-stop"),
    path("runs/<int:run_id>/users/", views.run_users, name="runs-users"),
    path("p/<slug:slug>/runs/", views.run_list, name="runs-list"),
    path("cluster/", views.cluster_view, name="runs-cluster"),
]
