"""Schemathesis against a live Swarmdeck: every operation of the generated OpenAPI document, every check.

The command line: `schemathesis run openapi.json --url <server> --checks all --exclude-checks ignored_auth`,
with an API token on every request (ignored_auth needs requests without one, which the header rules out),
and tests/api/schemathesis.toml (which writes answer 400 to rules no JSON Schema can state). The document
is the one the server answers at /api/schema/, saved to a file first: loaded from that URL, schemathesis
leaves GET /api/schema/ itself out. It must find nothing, and it must have tested every operation the
document has (its summary and its JUnit report say which), so that it cannot pass by testing none.

The run is bounded: a few examples per operation (SWARMDECK_SCHEMATHESIS_EXAMPLES) and a fixed seed, so CI
sees the same requests each time (SWARMDECK_SCHEMATHESIS_SEED tries others). The runs it starts stay
queued (no worker runs here) and can only aim at loopback: tests run with SWARMDECK_ALLOW_LOOPBACK_TARGETS=1
and no allowed-targets entry, so any other host is refused. The test cancels them at the end.
"""

import json
import os
import re
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from api.models import ApiToken
from runs import services
from runs.models import Run
from scenarios import secrets as project_secrets
from workers.target_rules import Rules

# Long, but it times nothing and starts none of Swarmdeck's processes: under `make test` it runs beside the
# process tests (tests/parallel.py), not after them.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("schemathesis")]

MAX_EXAMPLES = os.environ.get("SWARMDECK_SCHEMATHESIS_EXAMPLES", "5")
SEED = os.environ.get("SWARMDECK_SCHEMATHESIS_SEED", "20260101")
TIMEOUT = 240  # seconds: a run that has not ended by then fails the test
HOST = "http://127.0.0.1:9"  # loopback, and nothing listens there
CONFIG = Path(__file__).with_name("schemathesis.toml")
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def schemathesis_command(schema_file: Path, base_url: str, key: str, junit: Path) -> list[str]:
    return [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG), "--no-color",
            "run", str(schema_file), "--url", base_url,
            "--checks", "all", "--exclude-checks", "ignored_auth",
            "--header", f"Authorization: Bearer {key}",
            "--max-examples", MAX_EXAMPLES, "--seed", SEED, "--workers", "1",
            "--generation-database", "none", "--output-truncate", "false",
            "--report", "junit", "--report-junit-path", str(junit)]


def documented_operations(document: dict) -> set[str]:
    return {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
            if method in METHODS}


def operations_reported(junit: Path) -> set[str]:
    """The operations the JUnit report has a test case for (besides its "Stateful tests")."""
    names = {case.get("name") for case in ET.parse(junit).iter("testcase")}
    return {name for name in names if name.split(" ", 1)[0].lower() in METHODS}


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_schemathesis_finds_nothing_in_any_operation(live_server, alice, project, scenario, tmp_path):
    scenario.default_host = HOST
    scenario.save()
    run = services.start_run(scenario, user=alice, params={"host": HOST})
    project_secrets.set_secret(project, "API_TOKEN", "s3cr3t-value", alice)
    # The document's examples name these: slug=shop, scenario_id=1, run_id=1, name=API_TOKEN.
    assert (project.slug, scenario.pk, run.pk) == ("shop", 1, 1)
    _, key = ApiToken.issue(alice, "schemathesis")
    schema_file, junit = tmp_path / "openapi.json", tmp_path / "junit.xml"
    with urllib.request.urlopen(f"{live_server.url}/api/schema/", timeout=30) as answer:
        schema_file.write_bytes(answer.read())
    document = json.loads(schema_file.read_text())
    try:
        result = subprocess.run(schemathesis_command(schema_file, live_server.url, key, junit), cwd=tmp_path,
                                capture_output=True, text=True, timeout=TIMEOUT,
                                env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"})
    finally:
        for row in Run.objects.exclude(status__in=Run.TERMINAL):
            services.request_stop(row, alice)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"Test cases:\s+(\d+) generated, \1 passed", output), output
    operations = documented_operations(document)
    assert len(operations) == 25
    assert re.search(rf"Tested: {len(operations)}\b", output), output
    assert operations_reported(junit) == operations
    assert not Run.objects.exclude(status__in=Run.TERMINAL).exists()
    assert Run.objects.filter(trigger=Run.Trigger.API).exists()  # it did start runs (now cancelled)
    loopback_only = Rules([], allow_loopback=True)
    assert all(loopback_only.refusal(row.params["host"]) is None for row in Run.objects.exclude(params__host=""))
