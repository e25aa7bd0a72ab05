from django.urls import path, re_path

from api import pages, views

urlpatterns = [
    path("", pages.docs, name="api-docs"),
    path("tokens/", pages.token_list, name="api-tokens"),
    path("tokens/<int:token_id>/revoke/", pages.token_revoke, name="api-token-revoke"),
    path("schema/", views.openapi, name="api-schema"),
    path("projects/", views.projects, name="api-projects"),
    path("projects/<slug:slug>/scenarios/", views.scenarios, name="api-scenarios"),
    path("scenarios/<int:scenario_id>/", views.scenario_detail, name="api-scenario"),
    path("projects/<slug:slug>/secrets/", views.project_secrets_list, name="api-project-secrets"),
    path("projects/<slug:slug>/secrets/<str:name>/", views.project_secret, name="api-project-secret"),
    path("scenarios/<int:scenario_id>/environment/", views.scenario_environment, name="api-scenario-environment"),
    path("scenarios/<int:scenario_id>/locustfile/", views.locustfile, name="api-scenario-locustfile"),
    path("scenarios/<int:scenario_id>/runs/", views.scenario_runs, name="api-scenario-runs"),
    path("scenarios/<int:scenario_id>/criteria/", views.scenario_criteria, name="api-scenario-criteria"),
    path("runs/<int:run_id>/", views.run_detail, name="api-run"),
    path("runs/<int:run_id>/stop/", views.run_stop, name="api-run-stop"),
    path("runs/<int:run_id>/report.json", views.run_report_json, name="api-run-report-json"),
    path("runs/<int:run_id>/stats.csv", views.run_csv, {"kind": "stats"}, name="api-run-stats-csv"),
    path("runs/<int:run_id>/stats_history.csv", views.run_csv, {"kind": "stats_history"},
         name="api-run-stats-history-csv"),
    path("runs/<int:run_id>/failures.csv", views.run_csv, {"kind": "failures"}, name="api-run-failures-csv"),
    path("runs/<int:run_id>/exceptions.csv", views.run_csv, {"kind": "exceptions"}, name="api-run-exceptions-csv"),
    path("runs/<int:run_id>/report.html", views.run_report_html, name="api-run-report-html"),
    re_path(r"^(?P<rest>.+)$", views.not_found, name="api-not-found"),
]
