"""/metrics: every exported run's live figures in the Prometheus exposition format, read back with
prometheus_client's own parsers."""

import pytest
from django.test import override_settings
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from metrics.figures import LE_BOUNDS_SECONDS
from runs.models import Run
from tests.conftest import store_scenario
from tests.metrics.helpers import samples, scrape, stored_run, value
from workers.stats import MAX_ENDPOINTS, OTHER_NAME

MIXED = ([("GET", "/ok", 5.0, False)] * 10 + [("GET", "/ok", 20.0, False)] * 5 + [("GET", "/ok", 200.0, False)]
         + [("GET", "/ok", None, False)] + [("POST", "/cart", 1.0, True)] * 3)


def test_it_exports_a_running_runs_counters_users_and_histogram(client, scenario):
    run = stored_run(scenario, MIXED, users=7)
    families = scrape(client)
    ids = {"project": "shop", "scenario": "Checkout", "run": str(run.pk)}
    ok = {**ids, "method": "GET", "name": "/ok"}
    assert value(families, "swarmdeck_run_requests_total", **ok) == 17
    assert value(families, "swarmdeck_run_failures_total", **ok) == 0
    assert value(families, "swarmdeck_run_requests_total", **ids, method="POST", name="/cart") == 3
    assert value(families, "swarmdeck_run_failures_total", **ids, method="POST", name="/cart") == 3
    assert value(families, "swarmdeck_run_users", **ids) == 7
    assert value(families, "swarmdeck_run_info", **ids, status="running") == 1
    assert value(families, "swarmdeck_run_endpoints_truncated", **ids) == 0

    buckets = {s.labels["le"]: s.value for s in samples(families, "swarmdeck_run_response_time_seconds_bucket", **ok)}
    assert len(buckets) == len(LE_BOUNDS_SECONDS) + 1
    # 10 at 5 ms, 5 at 20 ms, 1 at 200 ms; the untimed request is counted, not timed.
    assert (buckets["0.001"], buckets["0.005"], buckets["0.015"], buckets["0.025"], buckets["0.15"],
            buckets["0.25"], buckets["+Inf"]) == (0, 10, 10, 15, 15, 16, 16)
    assert value(families, "swarmdeck_run_response_time_seconds_count", **ok) == 16
    assert value(families, "swarmdeck_run_response_time_seconds_sum", **ok) == pytest.approx(0.35)
    assert families["swarmdeck_run_response_time_seconds"].type == "histogram"
    assert families["swarmdeck_run_requests"].type == "counter"
    # No Aggregated series: a sum over endpoints would count everything twice.
    assert not samples(families, "swarmdeck_run_requests_total", name="Aggregated")


def test_it_labels_every_series_with_the_runs_labels_as_valid_label_names(client, scenario):
    run = stored_run(scenario, MIXED, labels={"sut_version": "1.4.2", "env-name": "staging", "build": 42})
    other = stored_run(scenario, MIXED)
    families = scrape(client)
    labelled = samples(families, "swarmdeck_run_requests_total", run=str(run.pk))
    assert labelled and all(s.labels["label_sut_version"] == "1.4.2" and s.labels["label_env_name"] == "staging"
                            and s.labels["label_build"] == "42" for s in labelled)
    # A run without them has them empty: Prometheus stores an empty label as no label.
    plain = samples(families, "swarmdeck_run_requests_total", run=str(other.pk))
    assert plain and all(s.labels["label_sut_version"] == s.labels["label_env_name"] == s.labels["label_build"] == ""
                         for s in plain)


def test_it_caps_endpoints_like_the_endpoint_table(client, scenario):
    run = stored_run(scenario, [("GET", f"/item/{i}", 2.0, False) for i in range(MAX_ENDPOINTS + 7)])
    families = scrape(client)
    series = samples(families, "swarmdeck_run_requests_total", run=str(run.pk))
    names = {s.labels["name"] for s in series}
    assert len(series) == MAX_ENDPOINTS + 1 and OTHER_NAME in names
    assert value(families, "swarmdeck_run_requests_total", run=str(run.pk), name=OTHER_NAME) == 7
    assert sum(s.value for s in series) == MAX_ENDPOINTS + 7
    assert value(families, "swarmdeck_run_endpoints_truncated", run=str(run.pk)) == 1


def test_it_stops_exporting_a_run_after_its_end(client, scenario):
    running = stored_run(scenario, MIXED)
    just_ended = stored_run(scenario, MIXED, status=Run.Status.FINISHED, ended_ago=10)
    long_ended = stored_run(scenario, MIXED, status=Run.Status.FAILED, ended_ago=120)
    queued = Run.objects.create(project=scenario.project, scenario=scenario, version=scenario.current_version)

    families = scrape(client)
    exported = {s.labels["run"]: s.labels["status"] for s in samples(families, "swarmdeck_run_info")}
    assert exported == {str(running.pk): "running", str(just_ended.pk): "finished", str(queued.pk): "queued"}
    assert value(families, "swarmdeck_run_requests_total", run=str(just_ended.pk), name="/ok") == 17
    assert value(families, "swarmdeck_run_users", run=str(just_ended.pk)) == 0
    assert not samples(families, "swarmdeck_run_requests_total", run=str(long_ended.pk))

    with override_settings(SWARMDECK_METRICS_ENDED_GRACE=0):
        families = scrape(client)
    assert {s.labels["run"] for s in samples(families, "swarmdeck_run_info")} == {str(running.pk), str(queued.pk)}


def test_it_reads_all_exported_runs_in_one_query(client, project, alice, django_assert_num_queries):
    for name in ("A", "B", "C"):
        stored_run(store_scenario(project, alice, name=name), MIXED, labels={"env": name})
    with django_assert_num_queries(1):
        families = scrape(client)
    assert {s.labels["scenario"] for s in samples(families, "swarmdeck_run_info")} == {"A", "B", "C"}


def test_it_answers_openmetrics_to_a_scraper_that_asks_for_it(client, scenario):
    run = stored_run(scenario, MIXED)
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(response.content.decode())}
    ok = [s for s in families["swarmdeck_run_requests"].samples
          if s.name == "swarmdeck_run_requests_total" and s.labels["run"] == str(run.pk) and s.labels["name"] == "/ok"]
    assert [s.value for s in ok] == [17]
    assert families["swarmdeck_run_response_time_seconds"].unit == "seconds"
