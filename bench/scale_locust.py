"""The anchor of bench/scale.py: Locust's own MasterRunner receiving N fake workers' reports.

Not run by hand: bench/scale.py starts it as subprocesses. It imports locust (which monkey-patches
the process with gevent), so it lives in a file of its own that only these subprocesses load.

    master:   python bench/scale_locust.py master --port P
              a real locust.runners.MasterRunner (Environment.create_master_runner) bound to
              127.0.0.1:P; a listener on `worker_report` counts the reports it handled. Prints one
              JSON line per second: {"t": epoch s, "reports": handled so far, "workers": connected}.
    workers:  python bench/scale_locust.py workers --port P --first I --count K --interval S
              K fake workers in one plain loop, each a ZeroMQ DEALER socket with its own identity,
              speaking Locust's rpc protocol (locust.rpc.Message, as zmqrpc.Client sends it):
              "client_ready", then a "heartbeat" every second and a "stats" report every S seconds.

A report is built like a real worker's: requests logged into a real locust.stats.RequestStats
(50 endpoints, ~160 requests each per report, lognormal latencies with medians from 2 to 400 ms,
2% failures with 5 distinct messages), then `serialize_stats()`, `total.get_stripped_report()`
and `serialize_errors()` as stats.on_report_to_master does, plus user_count and
user_classes_count as WorkerRunner adds them. A few such reports are recorded up front and sent
in turn, with their per-second keys and timestamps moved to the second they are sent in.
"""

import argparse
import json
import sys
import time

import gevent
import numpy as np
import zmq
from locust import User, constant, task
from locust.env import Environment
from locust.rpc import Message
from locust.stats import RequestStats

ENDPOINTS = 50
BASES = 4
ERRORS = [f"HTTPError('{code} Server Error for url: {{url}}')" for code in (500, 502, 503, 504, 429)]


class Idle(User):
    """A user class for the master's Environment; nobody spawns it."""

    wait_time = constant(1)

    @task
    def nothing(self) -> None:
        pass


def recorded_reports(rng: np.random.Generator) -> list[dict]:
    """Reports as WorkerRunner._send_stats builds them, from requests logged into real RequestStats."""
    stats = RequestStats()
    medians = np.geomspace(2, 400, ENDPOINTS)
    reports = []
    for _ in range(BASES):
        for e, median in enumerate(medians):
            method = "POST" if e % 5 == 0 else "GET"
            name = f"/api/v1/resource-{e}/{{id}}"
            n = int(rng.integers(130, 190))
            times = rng.lognormal(np.log(median), 0.4, n).tolist()
            failed = (rng.random(n) < 0.02).tolist()
            sizes = rng.integers(200, 20_000, n).tolist()
            for t, f, size in zip(times, failed, sizes):
                stats.log_request(method, name, t, size)
                if f:
                    stats.log_error(method, name, ERRORS[int(rng.integers(0, len(ERRORS)))].format(url=name))
        data = {"stats": stats.serialize_stats(), "stats_total": stats.total.get_stripped_report(),
                "errors": stats.serialize_errors(), "user_classes_count": {"ShopUser": 10}, "user_count": 10}
        stats.errors = {}
        reports.append(data)
    return reports


def current(report: dict, now: float) -> dict:
    """The report with its per-second counters and timestamps moved to `now`."""
    second = int(now)

    def moved(entry: dict) -> dict:
        return {**entry, "num_reqs_per_sec": {second: entry["num_requests"]},
                "num_fail_per_sec": {second: entry["num_failures"]} if entry["num_failures"] else {},
                "start_time": now - 1.0, "last_request_timestamp": now}

    return {**report, "stats": [moved(e) for e in report["stats"]], "stats_total": moved(report["stats_total"])}


def run_master(port: int) -> None:
    """A MasterRunner on 127.0.0.1:port; one JSON line per second with the reports it handled."""
    environment = Environment(user_classes=[Idle])
    handled = [0]

    def on_report(client_id: str, data: dict) -> None:  # noqa: ARG001
        handled[0] += 1

    environment.events.worker_report.add_listener(on_report)
    runner = environment.create_master_runner("127.0.0.1", port)
    while True:
        print(json.dumps({"t": time.time(), "reports": handled[0], "workers": len(runner.clients)}), flush=True)
        gevent.sleep(1.0)


def run_workers(port: int, first: int, count: int, interval: float, seconds: float) -> None:
    """`count` fake workers in a plain loop: ready, heartbeats each second, a stats report every `interval`."""
    reports = recorded_reports(np.random.default_rng(first))
    context = zmq.Context.instance()
    sockets = []
    for i in range(first, first + count):
        node_id = f"scale-worker-{i}"
        socket = context.socket(zmq.DEALER)
        socket.setsockopt(zmq.IDENTITY, node_id.encode())
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(f"tcp://127.0.0.1:{port}")
        socket.send(Message("client_ready", _locust_version(), node_id).serialize(), zmq.NOBLOCK)
        sockets.append((node_id, socket))
    start = time.time()
    next_heartbeat = next_report = start + 1.0
    sent = 0
    while time.time() - start < seconds:
        now = time.time()
        if now >= next_heartbeat:
            for node_id, socket in sockets:
                beat = {"state": "running", "current_cpu_usage": 50.0, "current_memory_usage": 100_000_000}
                socket.send(Message("heartbeat", beat, node_id).serialize(), zmq.NOBLOCK)
            next_heartbeat += 1.0
        if now >= next_report:
            for index, (node_id, socket) in enumerate(sockets):
                report = current(reports[(index + sent) % len(reports)], time.time())
                socket.send(Message("stats", report, node_id).serialize(), zmq.NOBLOCK)
            sent += 1
            next_report += interval
        for _, socket in sockets:  # the master's ack and heartbeats: read and dropped
            while socket.poll(0):
                socket.recv()
        time.sleep(max(0.0, min(next_heartbeat, next_report) - time.time()))


def _locust_version() -> str:
    from locust import __version__

    return __version__


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["master", "workers"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    if args.role == "master":
        run_master(args.port)
    else:
        run_workers(args.port, args.first, args.count, args.interval, args.seconds)
    sys.exit(0)


if __name__ == "__main__":
    main()
