from django.urls import path

from runs import cluster_views, history_views, report_views, threshold_views, views

urlpatterns = [
    path("scenarios/<int:scenario_id>/runs/new/", views.run_create, name="runs-create"),
    path("runs/<int:run_id>/", views.run_detail, name="runs-detail"),
    path("runs/<int:run_id>/status.json", views.run_status, name="runs-status"),
    path("runs/<int:run_id>/stop/", views.run_stop, name="runs-stop"),
    path("runs/<int:run_id>/users/", views.run_users, name="runs-users"),
    path("runs/<int:run_id>/endpoint-series.json", views.run_endpoint_series, name="runs-endpoint-series"),
    path("runs/<int:run_id>/series/", views.run_series, name="runs-series"),
    path("p/<slug:slug>/runs/", history_views.run_list, name="runs-list"),
    path("p/<slug:slug>/compare/", history_views.run_compare, name="runs-compare"),
    path("scenarios/<int:scenario_id>/trends/", history_views.scenario_trends, name="runs-trends"),
    path("scenarios/<int:scenario_id>/trends.json", history_views.scenario_trends_data, name="runs-trends-data"),
    path("runs/<int:run_id>/report/stats.csv", report_views.run_csv, {"kind": "stats"}, name="runs-report-stats"),
    path("runs/<int:run_id>/report/stats_history.csv", report_views.run_csv, {"kind": "stats_history"},
         name="runs-report-stats-history"),
    path("runs/<int:run_id>/report/failures.csv", report_views.run_csv, {"kind": "failures"},
         name="runs-report-failures"),
    path("runs/<int:run_id>/report/exceptions.csv", report_views.run_csv, {"kind": "exceptions"},
         name="runs-report-exceptions"),
    path("runs/<int:run_id>/report/run.json", report_views.run_json, name="runs-report-json"),
    path("runs/<int:run_id>/report/report.html", report_views.run_html, name="runs-report-html"),
    path("cluster/", views.cluster_view, name="runs-cluster"),
    path("cluster/stop-all/", cluster_views.stop_all, name="runs-cluster-stop-all"),
    path("cluster/drain/", cluster_views.drain, name="runs-cluster-drain"),
    path("cluster/undrain/", cluster_views.undrain, name="runs-cluster-undrain"),
    path("scenarios/<int:scenario_id>/criteria/new/", threshold_views.threshold_create, name="runs-threshold-create"),
    path("criteria/<int:threshold_id>/edit/", threshold_views.threshold_edit, name="runs-threshold-edit"),
    path("criteria/<int:threshold_id>/delete/", threshold_views.threshold_delete, name="runs-threshold-delete"),
]
