from django.urls import path

from scenarios import views

urlpatterns = [
    path("", views.project_list, name="scenarios-project-list"),
    path("projects/new/", views.project_create, name="scenarios-project-create"),
    path("p/<slug:slug>/", views.project_detail, name="scenarios-project-detail"),
    path("p/<slug:slug>/edit/", views.project_edit, name="scenarios-project-edit"),
    path("p/<slug:slug>/members/", views.member_list, name="scenarios-members"),
    path("p/<slug:slug>/members/<int:member_id>/role/", views.member_role, name="scenarios-member-role"),
    path("p/<slug:slug>/members/<int:member_id>/remove/", views.member_remove, name="scenarios-member-remove"),
    path("p/<slug:slug>/secrets/", views.secret_list, name="scenarios-secrets"),
    path("p/<slug:slug>/secrets/<str:name>/delete/", views.secret_delete, name="scenarios-secret-delete"),
    path("p/<slug:slug>/scenarios/new/", views.scenario_create, name="scenarios-create"),
    path("scenarios/<int:scenario_id>/", views.scenario_detail, name="scenarios-detail"),
    path("scenarios/<int:scenario_id>/edit/", views.scenario_edit, name="scenarios-edit"),
    path("scenarios/<int:scenario_id>/delete/", views.scenario_delete, name="scenarios-delete"),
    path("scenarios/<int:scenario_id>/upload/", views.version_upload, name="scenarios-upload"),
    path("scenarios/<int:scenario_id>/versions/<int:number>/", views.version_detail, name="scenarios-version"),
    path(
        "scenarios/<int:scenario_id>/versions/<int:number>/download/",
        views.version_download,
        name="scenarios-version-download",
    ),
]
