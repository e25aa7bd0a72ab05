"""Live run figures where teams already look: Prometheus at /metrics (prometheus.py, views.py) and,
when OTEL_EXPORTER_OTLP_ENDPOINT is set, OTLP from the collector (otlp.py). Both read figures.py."""
