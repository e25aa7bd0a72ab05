"""A run's environment variables come from its scenario, overridden or added to by the run form, a
schedule, the API (tests/runs/test_secrets_end_to_end.py) or runscenario --env; a secret never."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from automation import schedules
from automation.models import Schedule
from runs.models import Run
from scenarios import secrets

HOST = "http://127.0.0.1:9"


@pytest.fixture
def with_environment(scenario, project, alice):
    secrets.set_secret(project, "API_TOKEN", "a-token-value", alice)
    secrets.set_environment(scenario, {"STAGE": "scenario", "REGION": "eu"}, ["API_TOKEN"])
    return scenario


def _start_data(**extra):
    return {"users": 3, "spawn_rate": 1, "duration": "30s", "host": HOST, "slots": 1, **extra}


def test_the_run_form_overrides_and_adds_variables(client, alice, with_environment):
    client.force_login(alice)
    url = reverse("runs-create", args=[with_environment.pk])
    form = client.get(url).content.decode()
    assert "STAGE=scenario" in form and "API_TOKEN" in form  # the help text says what the scenario sets
    refused = client.post(url, _start_data(env_text="API_TOKEN=mine"))
    assert refused.status_code == 200 and "cannot be overridden" in refused.content.decode()
    refused = client.post(url, _start_data(env_text="LD_PRELOAD=/x.so"))
    assert refused.status_code == 200 and "reserved" in refused.content.decode()
    assert not Run.objects.exists()
    response = client.post(url, _start_data(env_text="STAGE=form\nEXTRA=1"))
    assert response.status_code == 302
    run = Run.objects.get()
    assert run.params["env"] == {"STAGE": "form", "REGION": "eu", "EXTRA": "1"}
    assert run.params["secrets"] == ["API_TOKEN"]
    page = client.get(run.get_absolute_url()).content.decode()
    assert "STAGE=form" in page and "Secrets received" in page and "a-token-value" not in page


def test_a_schedule_overrides_variables(client, alice, with_environment):
    client.force_login(alice)
    url = reverse("automation-schedule-create", args=[with_environment.pk])
    data = {"name": "nightly", "preset": Schedule.Preset.NIGHTLY, "timezone": "UTC", "host": HOST,
            "overlap": Schedule.Overlap.SKIP, "enabled": "on"}
    refused = client.post(url, {**data, "env_text": "API_TOKEN=mine"})
    assert refused.status_code == 200 and not Schedule.objects.exists()
    assert client.post(url, {**data, "env_text": "STAGE=nightly"}).status_code == 302
    schedule = Schedule.objects.get()
    assert schedule.env == {"STAGE": "nightly"}
    edit = client.get(reverse("automation-schedule-edit", args=[schedule.pk])).content.decode()
    assert "STAGE=nightly" in edit
    run = schedules.fire(schedule)
    assert run.params["env"] == {"STAGE": "nightly", "REGION": "eu"} and run.params["secrets"] == ["API_TOKEN"]


def test_runscenario_refuses_a_bad_env(with_environment, alice, capsys):
    with pytest.raises(SystemExit) as exit_code:
        call_command("runscenario", str(with_environment.pk), "--user", "alice", "--env", "PYTHONPATH=/x")
    assert exit_code.value.code == 2
    assert "reserved" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_code:
        call_command("runscenario", str(with_environment.pk), "--user", "alice", "--env", "NOEQUALS")
    assert exit_code.value.code == 2 and "NAME=VALUE" in capsys.readouterr().err
    assert not Run.objects.exists()
