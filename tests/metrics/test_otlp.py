"""OTLP export: the figures of /metrics, sent by opentelemetry-sdk's OTLP/HTTP exporter to a local stub."""

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

from metrics import otlp
from metrics.figures import LE_BOUNDS_SECONDS
from tests.metrics.helpers import stored_run
from tests.metrics.otlp_stub import OtlpStub, attributes, points
from tests.metrics.test_prometheus import MIXED


@pytest.fixture
def stub():
    server = OtlpStub()
    yield server
    server.stop()


def test_it_sends_the_runs_figures_to_the_receiver(stub, scenario):
    run = stored_run(scenario, MIXED, users=7, labels={"sut_version": "1.4.2"})
    export = otlp.OtlpExport(OTLPMetricExporter(endpoint=f"{stub.url}/v1/metrics"), 1.0, lambda: True)
    assert export.export_once()
    assert stub.paths == ["/v1/metrics"]
    [request] = stub.received
    assert {a.key: a.value.string_value for a in request.resource_metrics[0].resource.attributes}["service.name"] \
        == "swarmdeck"
    ok = {"run": str(run.pk), "method": "GET", "name": "/ok"}
    [requests] = points(request, "swarmdeck.run.requests", **ok)
    assert requests.as_int == 17
    assert attributes(requests) == {"project": "shop", "scenario": "Checkout", "label_sut_version": "1.4.2", **ok}
    [failures] = points(request, "swarmdeck.run.failures", run=str(run.pk), method="POST", name="/cart")
    assert failures.as_int == 3
    [users] = points(request, "swarmdeck.run.users", run=str(run.pk))
    assert users.as_int == 7
    [latency] = points(request, "swarmdeck.run.response_time", **ok)
    assert list(latency.explicit_bounds) == list(LE_BOUNDS_SECONDS)
    buckets = dict(zip([*LE_BOUNDS_SECONDS, float("inf")], latency.bucket_counts))
    # 10 at 5 ms, 5 at 20 ms, 1 at 200 ms (the untimed request is not in the histogram)
    assert (latency.count, buckets[0.005], buckets[0.025], buckets[0.25]) == (16, 10, 5, 1)
    assert sum(latency.bucket_counts) == 16
    assert latency.sum == pytest.approx(0.35) and latency.min == 0.005 and latency.max == 0.2
    assert requests.start_time_unix_nano == int(run.started_at.timestamp() * 1e9) < requests.time_unix_nano


def test_it_sends_nothing_while_another_collector_leads(stub, scenario):
    stored_run(scenario, MIXED)
    export = otlp.OtlpExport(OTLPMetricExporter(endpoint=f"{stub.url}/v1/metrics"), 1.0, lambda: False)
    assert not export.export_once()
    assert stub.received == []


def test_it_survives_a_receiver_that_is_not_there(scenario, caplog):
    stored_run(scenario, MIXED)
    stub = OtlpStub()
    url = stub.url
    stub.stop()
    export = otlp.OtlpExport(OTLPMetricExporter(endpoint=f"{url}/v1/metrics", timeout=1), 1.0, lambda: True)
    assert not export.export_once()
    assert not export.export_once()
    assert len([r for r in caplog.records if "OTLP export" in r.getMessage()]) == 1  # one line per outage


def test_it_exports_only_when_an_endpoint_is_set(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", raising=False)
    assert otlp.from_environment(lambda: True) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "500")
    export = otlp.from_environment(lambda: True)
    assert export.interval == 0.5
    assert export.exporter._endpoint == "http://127.0.0.1:4318/v1/metrics"
    export.exporter.shutdown()
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "soon")
    with pytest.raises(ValueError, match="OTEL_METRIC_EXPORT_INTERVAL='soon'"):
        otlp.from_environment(lambda: True)
