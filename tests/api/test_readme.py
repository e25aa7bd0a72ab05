"""The README's CI job and the docs page's curl lines, run as written (bash, curl, jq) against a live Swarmdeck."""

import re
import shutil
import subprocess
import threading
import time

import pytest
from django.db import connection

from api import schema
from api.models import ApiToken
from controlcenter.env import BASE_DIR
from runs.models import Run
from tests.locustfiles import SHOP
from tests.targets.conftest import allow

pytestmark = pytest.mark.skipif(not (shutil.which("jq") and shutil.which("curl")), reason="needs curl and jq")


def readme_job() -> str:
    section = (BASE_DIR / "README.md").read_text().split("## CI: run a load test from a pipeline", 1)[1]
    section = section.split("\n## ", 1)[0]
    [script] = [block for block in re.findall(r"```sh\n(.*?)```", section, re.S) if "/runs/" in block]
    return script


def _end_the_run_when_it_appears(status: str, verdict: str, stop: threading.Event):
    """What the collector would do: the run the script started ends, with a verdict."""
    try:
        while not stop.is_set():
            run = Run.objects.first()
            if run is not None:
                time.sleep(0.5)  # let the script poll it while it is still queued
                Run.objects.filter(pk=run.pk).update(status=status, verdict=verdict, reason="by the test")
                return
            time.sleep(0.05)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status,verdict,exit_code", [
    (Run.Status.FINISHED, "", 0),
    (Run.Status.FINISHED, "pass", 0),
    (Run.Status.FINISHED, "fail", 1),
    (Run.Status.FAILED, "", 1),
])
def test_the_readme_ci_job_passes_or_fails_the_build(live_server, scenario, alice, tmp_path, status, verdict,
                                                     exit_code):
    scenario.default_host = "http://127.0.0.1:9"
    scenario.save()
    _, key = ApiToken.issue(alice, "ci")
    stop = threading.Event()
    ender = threading.Thread(target=_end_the_run_when_it_appears, args=(status, verdict, stop))
    ender.start()
    try:
        result = subprocess.run(
            ["bash", "-c", readme_job()], cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "SWARMDECK_URL": live_server.url, "SWARMDECK_TOKEN": key,
                 "SCENARIO_ID": str(scenario.pk), "POLL_SECONDS": "0.2"})
    finally:
        stop.set()
        ender.join()
    assert result.returncode == exit_code, result.stdout + result.stderr
    run = Run.objects.get()
    assert f"Run {run.pk} queued: {live_server.url}/runs/{run.pk}/" in result.stdout
    assert run.params["users"] == 50 and run.params["duration"] == 300 and run.trigger == Run.Trigger.API
    assert run.labels == {"commit": "local"}  # CI_COMMIT_SHA or GITHUB_SHA in a real pipeline
    assert (tmp_path / f"run-{run.pk}-report.html").read_text().startswith("<!doctype html>")
    if exit_code:
        assert f"status {status}, verdict {verdict or 'none'}" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_the_docs_pages_curl_lines_work_as_printed(live_server, project, alice, tmp_path):
    (tmp_path / "locustfile.py").write_bytes(SHOP)
    allow(project, "staging.example.com")  # the examples' host, approved as an admin would
    _, key = ApiToken.issue(alice, "docs")
    document = schema.document(live_server.url)

    def run_example(path, method, **ids):
        operation = document["paths"][path][method]
        command = schema.curl(live_server.url, path, method, operation,
                              [{"name": k, "example": v} for k, v in ids.items()], document)
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                                env={"PATH": "/usr/bin:/bin", "SWARMDECK_TOKEN": key})
        assert result.returncode == 0, result.stderr
        return result.stdout

    created = run_example("/api/projects/{slug}/scenarios/", "post", slug="shop")
    assert '"name": "Checkout"' in created
    scenario_id = project.scenarios.get().pk
    started = run_example("/api/scenarios/{scenario_id}/runs/", "post", scenario_id=scenario_id)
    run = Run.objects.get()
    assert f'"id": {run.pk}' in started and run.params["users"] == 50 and run.params["duration"] == 300
    assert '"status": "queued"' in run_example("/api/runs/{run_id}/", "get", run_id=run.pk)
    run_example("/api/runs/{run_id}/stats.csv", "get", run_id=run.pk)
    assert (tmp_path / f"run-{run.pk}_stats.csv").read_text().startswith("Type,Name,Request Count")
