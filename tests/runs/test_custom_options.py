"""A locustfile's own command-line options end to end: read by the analysis, set from the run form
and the API, parsed by Locust's parser in real pools, and seen in `environment.parsed_options` by
the users (nginx counts what they requested)."""

import json
import os
import subprocess
import sys

import pytest
from django.urls import reverse

from controlcenter.env import BASE_DIR
from runs import services
from runs.models import Run
from scenarios.options import MASK
from tests.api.conftest import ApiClient, key_for
from tests.conftest import store_scenario
from tests.runs.conftest import database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECRET = "hunter2-not-to-be-shown"

OPTIONS = b'''\
from locust import FastHttpUser, constant, events, task


@events.init_command_line_parser.add_listener
def _(parser):
    parser.add_argument("--region", choices=["eu", "us"], default="us", help="Where the users come from")
    parser.add_argument("--pages", type=int, default=1, help="Pages per visit")
    parser.add_argument("--token", is_secret=True, default="", help="API token")


@events.init.add_listener
def tell(environment, **kwargs):
    print("the token is", environment.parsed_options.token)  # the Logs tab must not show it


class Reader(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def read(self):
        options = self.environment.parsed_options
        # pages must arrive as the int 3 (Locust's parser applied type=int), not the text "3"
        if options.region == "eu" and options.pages == 3 and options.token == "hunter2-not-to-be-shown":
            self.client.get("/ok")
        else:
            self.client.get("/json")
'''


@pytest.fixture
def scenario(project, alice):
    return store_scenario(project, alice, name="Options", content=OPTIONS)


def _served(target, before):
    after = target.counts()
    return {uri: after.get(("GET", uri, 200), 0) - before.get(("GET", uri, 200), 0) for uri in ("/ok", "/json")}


def _assert_saw_the_options(run, target, before):
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FINISHED, run.reason
    served = _served(target, before)
    assert served["/ok"] > 0 and served["/json"] == 0, served
    assert abs(run.total_requests - served["/ok"]) <= run.params["users"]
    assert run.params["options"] == {"region": "eu", "pages": 3, "token": SECRET}
    assert run.params["secret_options"] == ["token"]
    return run


def _assert_secret_not_shown(client, api, run):
    page = client.get(run.get_absolute_url()).content.decode()
    assert "--region eu" in page and SECRET not in page
    detail = api.get(reverse("api-run", args=[run.pk]))
    assert detail.json()["params"]["options"] == {"region": "eu", "pages": 3, "token": MASK}
    assert SECRET not in detail.content.decode()
    report = api.get(reverse("api-run-report-json", args=[run.pk])).content.decode()
    assert SECRET not in report and json.loads(report)["params"]["options"]["token"] == MASK
    from runlogs.models import LogLine

    printed = [line.message for line in LogLine.objects.filter(run=run) if line.message.startswith("the token is")]
    assert printed and all(message == "the token is [secret --token]" for message in printed), printed
    logs = client.get(reverse("runlogs-text", args=[run.pk])).content.decode()
    assert "the token is [secret --token]" in logs and SECRET not in logs


def test_the_analysis_lists_the_options_with_their_defaults(client, alice, scenario):
    client.force_login(alice)
    page = client.get(scenario.current_version.get_absolute_url()).content.decode()
    assert "Command-line options" in page and "--region" in page and "--pages" in page
    api = ApiClient(client, key_for(alice))
    options = {o["name"]: o for o in api.get(reverse("api-scenario", args=[scenario.pk])).json()
               ["current_version"]["options"]}
    assert (options["--region"]["default"], options["--region"]["choices"]) == ("us", ["eu", "us"])
    assert (options["--pages"]["default"], options["--pages"]["type"]) == (1, "int")
    form = client.get(reverse("runs-create", args=[scenario.pk])).content.decode()
    assert 'name="option_region"' in form and 'name="option_pages"' in form and 'value="1"' in form
    assert 'type="password" name="option_token"' in form


def test_options_set_on_the_run_form_reach_parsed_options(cluster, target, client, alice, scenario):
    client.force_login(alice)
    url = reverse("runs-create", args=[scenario.pk])
    data = {"users": 2, "spawn_rate": 100, "duration": "3s", "host": target.url, "slots": 2}
    refused = client.post(url, {**data, "option_region": "asia", "option_pages": "3", "option_token": SECRET})
    assert refused.status_code == 200 and not Run.objects.exists()
    text = refused.content.decode()
    assert "--region must be one of eu, us; asia is not." in text
    assert SECRET not in text  # a password field never echoes its value
    not_a_number = client.post(url, {**data, "option_region": "eu", "option_pages": "three"}).content.decode()
    assert "--pages takes a whole number, not &#x27;three&#x27;." in not_a_number and not Run.objects.exists()

    before = target.counts()
    response = client.post(url, {**data, "option_region": "eu", "option_pages": "3", "option_token": SECRET})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    run = _assert_saw_the_options(run, target, before)
    _assert_secret_not_shown(client, ApiClient(client, key_for(alice)), run)


def test_options_set_through_the_api_reach_parsed_options(cluster, target, client, alice, scenario):
    api = ApiClient(client, key_for(alice))
    url = reverse("api-scenario-runs", args=[scenario.pk])
    data = {"users": 2, "spawn_rate": 100, "duration": 3, "host": target.url, "slots": 2}
    refused = api.post_json(url, {**data, "options": {"region": "asia", "pages": 3}})
    assert refused.status_code == 400 and not Run.objects.exists()
    assert refused.json()["errors"]["options"] == ["--region must be one of eu, us; 'asia' is not."]
    unknown = api.post_json(url, {**data, "options": {"regoin": "eu"}})
    assert unknown.status_code == 400
    assert unknown.json()["errors"]["options"] == [
        "Unknown option 'regoin': this locustfile's options are --region, --pages, --token."]

    before = target.counts()
    response = api.post_json(url, {**data, "options": {"region": "eu", "pages": 3, "token": SECRET}})
    assert response.status_code == 201, response.content
    assert SECRET not in response.content.decode()
    run = _assert_saw_the_options(Run.objects.get(pk=response.json()["id"]), target, before)
    client.force_login(alice)
    _assert_secret_not_shown(client, api, run)


def test_runscenario_sets_options_with_option_name_value(cluster, target, alice, scenario):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url()}
    command = [sys.executable, "manage.py", "runscenario", str(scenario.pk), "-u", "2", "-r", "100", "-t", "3s",
               "--host", target.url, "--slots", "1", "--user", "alice"]
    refused = subprocess.run([*command, "--option", "region=asia"], cwd=BASE_DIR, env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "--region must be one of eu, us; 'asia' is not." in refused.stderr
    assert not Run.objects.exists()

    before = target.counts()
    result = subprocess.run([*command, "--option", "region=eu", "--option", "pages=3", "--option", f"token={SECRET}"],
                            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert f"Locustfile options: --region eu --pages 3 --token {MASK}" in result.stdout
    _assert_saw_the_options(Run.objects.get(), target, before)


HIDDEN_AT_RUN_TIME = b'''\
import os
from locust import HttpUser, constant, events, task

if os.environ.get("NEVER_SET_ANYWHERE"):
    @events.init_command_line_parser.add_listener
    def _(parser):
        parser.add_argument("--region", default="us")


class U(HttpUser):
    wait_time = constant(1)

    @task
    def t(self):
        self.client.get("/json")
'''


def test_an_option_the_locustfile_does_not_add_when_it_runs_fails_the_run_saying_so(cluster, target, alice, project):
    scenario = store_scenario(project, alice, name="Conditional", content=HIDDEN_AT_RUN_TIME)
    assert [o["name"] for o in scenario.current_version.findings["options"]] == ["--region"]  # the analysis sees it
    run = services.start_run(scenario, user=alice, params={"host": target.url, "duration": 3, "users": 1,
                                                           "options": {"region": "eu"}})
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FAILED
    assert "The locustfile's parser has no option 'region'" in run.reason, run.reason
