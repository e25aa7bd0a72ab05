"""A local OTLP/HTTP receiver for tests: records every metrics export it is sent, decoded with the
opentelemetry-proto classes, and answers as a collector does."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)


class OtlpStub:
    def __init__(self) -> None:
        self.received: list[ExportMetricsServiceRequest] = []
        self.paths: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                stub.paths.append(self.path)
                stub.received.append(request)
                answer = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def attributes(point) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


def points(request: ExportMetricsServiceRequest, metric: str, **labels) -> list:
    """The data points of `metric` in one export whose attributes include `labels`."""
    found = []
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for entry in scope.metrics:
                if entry.name != metric:
                    continue
                kind = entry.WhichOneof("data")
                found += [p for p in getattr(entry, kind).data_points if labels.items() <= attributes(p).items()]
    return found
