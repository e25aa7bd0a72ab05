"""A project secret end to end (the attack): a locustfile that prints its secret, logs it, raises
exceptions and failures that quote it, and fails in on_start naming it. Real workers, collector and
nginx: the pool must get the value (nginx counts /ok only when it matches), and the value must be
absent from everything stored and shown: log lines, exceptions, errors, the run's reason and slot
errors, the JSON/HTML/CSV reports, the webhook payload, every API answer, every page a viewer can
load (an outsider gets 404), and every row of the database."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse

from automation import webhooks
from automation.models import Event, Webhook, WebhookDelivery
from controlcenter.env import BASE_DIR
from runlogs.models import LogLine
from runs import services
from runs.models import Run
from scenarios import secrets
from scenarios.models import Membership, Role
from tests.api.conftest import ApiClient, key_for
from tests.automation.conftest import Receiver
from tests.conftest import store_scenario
from tests.runs.conftest import database_url, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TOKEN = "sd-e2e-7c41f0b9d2-token"
MASKED = "[secret API_TOKEN]"
DIGEST = hashlib.sha256(TOKEN.encode()).hexdigest()

# The locustfile never holds the value itself (members read its source): only its digest.
PRINTS_ITS_SECRET = f'''\
import hashlib
import logging
import os

from locust import HttpUser, constant, task

TOKEN = os.environ["API_TOKEN"]
print("the token is", TOKEN, flush=True)
logging.getLogger("shop").warning("logged token=%s", TOKEN)


class Leaky(HttpUser):
    wait_time = constant(0.05)

    @task
    def use_it(self):
        right = hashlib.sha256(os.environ["API_TOKEN"].encode()).hexdigest() == "{DIGEST}"
        if right and os.environ.get("STAGE") == "from-api" and os.environ.get("REGION") == "eu":
            self.client.get("/ok")
        else:
            self.client.get("/json")
        self.client.get(f"/slot/{{TOKEN}}")  # an endpoint named by a URL that holds it
        with self.client.get("/status/500", name="/boom", catch_response=True) as response:
            response.failure(f"the server refused {{TOKEN}}")
        raise RuntimeError(f"deliberately leaking {{TOKEN}}")
'''.encode()

FAILS_ON_START = b'''\
import os

from locust import HttpUser, task


class Starter(HttpUser):
    def on_start(self):
        raise ValueError("cannot log in with " + os.environ["API_TOKEN"])

    @task
    def t(self):
        pass
'''


@pytest.fixture
def receiver(settings):
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    server = Receiver()
    yield server
    server.stop()


def _with_secret(project, alice, name, content):
    scenario = store_scenario(project, alice, name=name, content=content)
    secrets.set_environment(scenario, {"STAGE": "scenario", "REGION": "eu"}, ["API_TOKEN"])
    return scenario


def _assert_clean(text: str, where: str) -> None:
    assert TOKEN not in text, f"the secret's value appears in {where}"


def _database_is_clean() -> None:
    """No row of any table holds the value in clear (binary columns included)."""
    for model in apps.get_models():
        for row in model.objects.all():
            for field in model._meta.concrete_fields:
                value = getattr(row, field.attname)
                if isinstance(value, (bytes, memoryview)):
                    assert TOKEN.encode() not in bytes(value), f"{model.__name__}.{field.name}"
                else:
                    _assert_clean(json.dumps(value, cls=DjangoJSONEncoder, default=str),
                                  f"{model.__name__}.{field.name}")


def _deliver_webhooks(run, receiver) -> list[dict]:
    """The collector created the deliveries when the run ended; POST them here (no control worker)."""
    wait_for(lambda: WebhookDelivery.objects.filter(run=run).exists(), 20, "no webhook delivery was created")
    for delivery in WebhookDelivery.objects.filter(run=run):
        webhooks.attempt_delivery(delivery.pk)
    assert receiver.requests
    return receiver.requests


def _viewer_and_outsider_pages(client, run, bob, charlie) -> None:
    scenario = run.scenario
    urls = [
        reverse("scenarios-project-detail", args=["shop"]), reverse("scenarios-secrets", args=["shop"]),
        reverse("scenarios-detail", args=[scenario.pk]), reverse("scenarios-version", args=[scenario.pk, 1]),
        reverse("runs-list", args=["shop"]),
        reverse("runs-trends", args=[scenario.pk]), reverse("runs-trends-data", args=[scenario.pk]),
        reverse("runs-detail", args=[run.pk]), reverse("runs-status", args=[run.pk]),
        reverse("runlogs-json", args=[run.pk]), reverse("runlogs-text", args=[run.pk]),
        reverse("runs-report-json", args=[run.pk]), reverse("runs-report-html", args=[run.pk]),
        *(reverse(f"runs-report-{kind}", args=[run.pk]) for kind in ("stats", "stats-history", "failures",
                                                                       "exceptions")),
    ]
    client.force_login(bob)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_clean(response.content.decode(), f"{url} (as the viewer bob)")
    assert client.get(reverse("scenarios-edit", args=[scenario.pk])).status_code == 403
    client.force_login(charlie)
    for url in urls:
        assert client.get(url).status_code == 404, url


def _api_answers(api, run) -> list[str]:
    scenario = run.scenario
    urls = [reverse("api-projects"), reverse("api-scenarios", args=["shop"]),
            reverse("api-scenario", args=[scenario.pk]), reverse("api-scenario-environment", args=[scenario.pk]),
            reverse("api-scenario-runs", args=[scenario.pk]), reverse("api-project-secrets", args=["shop"]),
            reverse("api-run", args=[run.pk]), reverse("api-run-report-json", args=[run.pk]),
            reverse("api-run-report-html", args=[run.pk]), reverse("api-run-stats-csv", args=[run.pk]),
            reverse("api-run-stats-history-csv", args=[run.pk]), reverse("api-run-failures-csv", args=[run.pk]),
            reverse("api-run-exceptions-csv", args=[run.pk])]
    answers = []
    for url in urls:
        response = api.get(url)
        assert response.status_code == 200, url
        _assert_clean(response.content.decode(), f"the API's {url}")
        answers.append(response.content.decode())
    return answers


def test_a_secret_reaches_the_pool_and_is_masked_everywhere(cluster, target, client, alice, bob, charlie,
                                                            charlies_project, project, receiver):
    secrets.set_secret(project, "API_TOKEN", TOKEN, alice)
    scenario = _with_secret(project, alice, "Leaky", PRINTS_ITS_SECRET)
    Webhook.objects.create(project=project, url=receiver.url, events=[Event.RUN_FINISHED, Event.RUN_FAILED])
    membership = Membership.objects.create(project=project, user=bob, role=Role.RUNNER)

    # bob, a runner, starts it through the API, overriding a variable (a secret cannot be overridden).
    api = ApiClient(client, key_for(bob))
    url = reverse("api-scenario-runs", args=[scenario.pk])
    data = {"users": 2, "spawn_rate": 100, "duration": 3, "host": target.url, "slots": 2}
    refused = api.post_json(url, {**data, "env": {"API_TOKEN": "mine"}})
    assert refused.status_code == 400 and "cannot override a secret" in refused.json()["errors"]["env"][0]
    before = target.counts()
    response = api.post_json(url, {**data, "env": {"STAGE": "from-api"}})
    assert response.status_code == 201, response.content
    run = services.wait_until_done(Run.objects.get(pk=response.json()["id"]), timeout=90)
    assert run.status == Run.Status.FINISHED, run.reason

    # The pool got the value: nginx served /ok (and never /json, the wrong-value branch).
    after = target.counts()
    served = {uri: after.get(("GET", uri, 200), 0) - before.get(("GET", uri, 200), 0) for uri in ("/ok", "/json")}
    assert served["/ok"] > 0 and served["/json"] == 0, served

    # The run records names (and variables), never the value.
    assert run.params["env"] == {"STAGE": "from-api", "REGION": "eu"} and run.params["secrets"] == ["API_TOKEN"]

    # What the locustfile printed, logged and raised is there, masked.
    lines = [line.message for line in LogLine.objects.filter(run=run)]
    assert any(line == f"the token is {MASKED}" for line in lines), lines[:20]
    assert any(f"logged token={MASKED}" in line for line in lines), lines[:20]
    for line in lines:
        _assert_clean(line, "a stored log line")
    assert run.exceptions and all(MASKED in row["message"] for row in run.exceptions), run.exceptions
    assert any(MASKED in row["traceback"] for row in run.exceptions)
    assert run.errors and all(MASKED in row["error"] for row in run.errors), run.errors
    assert any(row["name"] == f"/slot/{MASKED}" and row["requests"] > 0 for row in run.totals), run.totals
    _assert_clean(json.dumps([run.totals, run.exceptions, run.errors, run.reason, run.warnings]), "the run's results")

    [payload] = [json.loads(request["body"]) for request in _deliver_webhooks(run, receiver)]
    assert payload["run"]["id"] == run.pk
    _assert_clean(json.dumps(payload), "the webhook payload")

    # The Details tab names what the run received.
    membership.role = Role.VIEWER
    membership.save()
    client.force_login(bob)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Secrets received" in page and "API_TOKEN" in page and "STAGE=from-api" in page

    answers = _api_answers(api, run)
    detail = json.loads(answers[6])
    assert detail["params"]["secrets"] == ["API_TOKEN"]
    _viewer_and_outsider_pages(client, run, bob, charlie)
    outsider = ApiClient(client, key_for(charlie))
    for url in (reverse("api-run", args=[run.pk]), reverse("api-scenario-environment", args=[scenario.pk]),
                reverse("api-project-secrets", args=["shop"]), reverse("api-run-report-json", args=[run.pk])):
        assert outsider.get(url).status_code == 404, url

    for process in (*cluster["workers"], cluster["collector"]):
        _assert_clean(process.output(), f"the output of {process.name}")
    _database_is_clean()


def test_a_run_that_fails_quoting_its_secret_stores_the_reason_masked(cluster, target, alice, project, receiver):
    secrets.set_secret(project, "API_TOKEN", TOKEN, alice)
    scenario = _with_secret(project, alice, "Starter", FAILS_ON_START)
    Webhook.objects.create(project=project, url=receiver.url, events=[Event.RUN_FAILED])
    run = services.start_run(scenario, user=alice, params={"users": 2, "spawn_rate": 100, "duration": 20,
                                                           "host": target.url, "slots": 1})
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FAILED
    assert f"ValueError: cannot log in with {MASKED}" in run.reason, run.reason
    slot_errors = list(run.slots.values_list("error", flat=True))
    assert any(MASKED in error for error in slot_errors), slot_errors
    [payload] = [json.loads(request["body"]) for request in _deliver_webhooks(run, receiver)]
    assert MASKED in payload["run"]["reason"]
    _assert_clean(json.dumps(payload), "the webhook payload")
    _database_is_clean()


def test_runscenario_env_overrides_a_variable_and_prints_no_secret(cluster, target, alice, project):
    secrets.set_secret(project, "API_TOKEN", TOKEN, alice)
    scenario = _with_secret(project, alice, "Leaky", PRINTS_ITS_SECRET)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url()}
    command = [sys.executable, "manage.py", "runscenario", str(scenario.pk), "-u", "1", "-r", "100", "-t", "2s",
               "--host", target.url, "--slots", "1", "--user", "alice"]
    refused = subprocess.run([*command, "--env", "API_TOKEN=mine"], cwd=BASE_DIR, env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "cannot override a secret" in refused.stderr
    before = target.counts()
    result = subprocess.run([*command, "--env", "STAGE=from-api"], cwd=BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=120)
    # exit code 1: the locustfile fails /boom on purpose, and runscenario exits 1 on failures, like locust
    assert result.returncode == 1 and "finished" in result.stdout, result.stdout + result.stderr
    assert "Environment: STAGE=from-api REGION=eu API_TOKEN=[secret]" in result.stdout
    _assert_clean(result.stdout + result.stderr, "runscenario's output")
    after = target.counts()
    assert after.get(("GET", "/ok", 200), 0) > before.get(("GET", "/ok", 200), 0)
    assert after.get(("GET", "/json", 200), 0) == before.get(("GET", "/json", 200), 0)
    run = Run.objects.get()
    assert run.params["env"] == {"STAGE": "from-api", "REGION": "eu"}
