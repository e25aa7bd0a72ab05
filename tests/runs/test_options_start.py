"""Starting runs with a locustfile's own options, without a cluster: the form (hidden and secret
options), the API, schedules and runscenario validate them the same way and record them on the run;
secret values are never shown back."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from automation import schedules
from automation.models import Schedule, ScheduleSkip
from runs import live, reports, services
from runs.models import Run
from scenarios.options import MASK
from tests.api.conftest import ApiClient, key_for
from tests.conftest import store_scenario

HOST = "http://127.0.0.1:9"
SECRET = "s3cret-value-never-shown"

LOCUSTFILE = b'''\
from locust import HttpUser, constant, events, task


@events.init_command_line_parser.add_listener
def _(parser):
    parser.add_argument("--region", choices=["eu", "us"], default="us")
    parser.add_argument("--pages", type=int, default=1)
    parser.add_argument("--token", is_secret=True, default="")
    parser.add_argument("--debug-users", action="store_true", include_in_web_ui=False)


class U(HttpUser):
    wait_time = constant(1)

    @task
    def t(self):
        pass
'''


@pytest.fixture
def scenario(project, alice):
    return store_scenario(project, alice, name="Options", content=LOCUSTFILE)


def _form(**extra):
    return {"users": 2, "spawn_rate": 1, "duration": "30s", "host": HOST, "slots": 1, "option_region": "us",
            "option_pages": "1", **extra}


def test_the_form_offers_options_for_the_web_ui_only_and_records_them(client, alice, scenario):
    client.force_login(alice)
    url = reverse("runs-create", args=[scenario.pk])
    page = client.get(url).content.decode()
    assert 'name="option_region"' in page and 'name="option_token"' in page
    assert "debug_users" not in page  # include_in_web_ui=False: API and command line only
    response = client.post(url, _form(option_region="eu", option_pages="3", option_token=SECRET))
    run = Run.objects.get()
    assert response.status_code == 302
    assert run.params["options"] == {"region": "eu", "pages": 3, "token": SECRET}
    assert run.params["secret_options"] == ["token"]
    [assignment] = services.assignments(run)
    assert assignment["params"]["options"] == {"region": "eu", "pages": 3, "token": SECRET}  # what the pool parses


def test_a_secret_is_masked_on_the_run_page_live_state_report_and_api(client, alice, scenario):
    run = services.start_run(scenario, user=alice, params={"host": HOST, "options": {"token": SECRET}})
    client.force_login(alice)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "--token ********" in page and "--region us" in page and SECRET not in page
    assert live.meta(run)["params"]["options"] == {"token": MASK}
    assert SECRET not in str(reports.report_data(run)) and SECRET not in reports.html_report(run)
    body = ApiClient(client, key_for(alice)).get(reverse("api-run", args=[run.pk])).content.decode()
    assert SECRET not in body and MASK in body


def test_the_api_sets_hidden_options_and_refuses_bad_ones_by_name(client, alice, scenario):
    api = ApiClient(client, key_for(alice))
    url = reverse("api-scenario-runs", args=[scenario.pk])
    response = api.post_json(url, {"host": HOST, "options": {"debug-users": True, "pages": "4"}})
    assert response.status_code == 201, response.content
    assert Run.objects.get().params["options"] == {"debug_users": True, "pages": 4}
    bad = api.post_json(url, {"host": HOST, "users": 0, "options": {"pages": "many", "colour": "red"}})
    assert bad.status_code == 400
    errors = bad.json()["errors"]
    assert "users" in errors  # the other fields' errors come too
    assert errors["options"] == ["--pages takes a whole number, not 'many'.", "Unknown option 'colour': this "
                                 "locustfile's options are --region, --pages, --token, --debug-users."]
    not_an_object = api.post_json(url, {"host": HOST, "options": ["region", "eu"]})
    assert not_an_object.json()["errors"] == {"options": ["Expected an object, got [\"region\", \"eu\"]."]}
    form_data = api.post(url, {"host": HOST, "options": '{"region": "eu"}'})  # form data: the object as JSON
    assert form_data.status_code == 201 and Run.objects.get(pk=form_data.json()["id"]).params["options"] == {
        "region": "eu"}
    assert Run.objects.count() == 2


def test_start_run_refuses_bad_options_from_any_caller(scenario, alice):
    with pytest.raises(services.OptionsRefused) as refused:
        services.start_run(scenario, user=alice, params={"host": HOST, "options": {"region": "mars"}})
    assert refused.value.errors == {"--region": "--region must be one of eu, us; 'mars' is not."}
    assert not Run.objects.exists()


def _schedule_data(**extra):
    return {"name": "nightly", "preset": "nightly", "cron": "", "timezone": "UTC", "overlap": "queue",
            "enabled": "on", "users": "", "spawn_rate": "", "duration": "", "host": HOST, "slots": "", **extra}


def test_a_schedule_offers_the_options_stores_them_and_its_runs_get_them(client, alice, scenario):
    client.force_login(alice)
    create = reverse("automation-schedule-create", args=[scenario.pk])
    form = client.get(create).content.decode()
    assert 'name="option_region"' in form and 'type="password" name="option_token"' in form
    refused = client.post(create, _schedule_data(option_region="eu", option_pages="x"))
    assert "--pages takes a whole number, not &#x27;x&#x27;." in refused.content.decode()
    assert not Schedule.objects.exists()
    response = client.post(create, _schedule_data(option_region="eu", option_pages="3", option_token=SECRET))
    assert response.status_code == 302
    schedule = Schedule.objects.get()
    assert schedule.options == {"region": "eu", "pages": 3, "token": SECRET}
    detail = client.get(schedule.get_absolute_url()).content.decode()
    assert "--region eu" in detail and "--token ********" in detail and SECRET not in detail
    edit = reverse("automation-schedule-edit", args=[schedule.pk])
    assert SECRET not in client.get(edit).content.decode()
    client.post(edit, _schedule_data(option_region="us", option_pages="3", option_token=""))  # empty keeps it
    schedule.refresh_from_db()
    assert schedule.options == {"region": "us", "pages": 3, "token": SECRET}
    run = schedules.fire(schedule)
    assert isinstance(run, Run) and run.params["options"] == {"region": "us", "pages": 3, "token": SECRET}


def test_a_schedule_whose_option_the_locustfile_dropped_records_why_it_did_not_start(scenario, alice):
    schedule = schedules.save_schedule(Schedule(scenario=scenario, name="old", preset=Schedule.Preset.NIGHTLY,
                                                host=HOST, options={"colour": "red"}, created_by=alice))
    skip = schedules.fire(schedule)
    assert isinstance(skip, ScheduleSkip) and skip.kind == ScheduleSkip.Kind.ERROR
    assert "Unknown option 'colour'" in skip.reason and not Run.objects.exists()


def test_runscenario_checks_its_options_like_the_form(scenario, alice):
    errors = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("runscenario", str(scenario.pk), "--user", "alice", "--option", "region=asia",
                     "--option", "pages=3", stderr=errors, stdout=io.StringIO())
    assert exited.value.code == 2
    assert "--region must be one of eu, us; 'asia' is not." in errors.getvalue()
    with pytest.raises(SystemExit):
        call_command("runscenario", str(scenario.pk), "--user", "alice", "--option", "region",
                     stderr=errors, stdout=io.StringIO())
    assert "--option 'region': write NAME=VALUE" in errors.getvalue()
    assert not Run.objects.exists()


def test_the_admin_and_the_comparison_mask_a_secret_too(client, alice, scenario):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    first = services.start_run(scenario, user=alice, params={"host": HOST, "options": {"token": SECRET}})
    second = services.start_run(scenario, user=alice, params={"host": HOST, "options": {"region": "eu"}})
    client.force_login(alice)
    admin_page = client.get(reverse("admin:runs_run_change", args=[first.pk])).content.decode()
    assert "secret_options" in admin_page and SECRET not in admin_page
    compare = client.get(reverse("runs-compare", args=["shop"]), {"runs": f"{first.pk},{second.pk}"})
    rows = {r["label"]: r for r in compare.context["parameters"]}
    assert rows["Locustfile options"] == {"label": "Locustfile options", "differs": True,
                                          "values": [f"--token {MASK}", "--region eu"]}
    assert SECRET not in compare.content.decode()
