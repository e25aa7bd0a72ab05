"""Run again: the form starts from the run's parameters, labels and variables (so equal runs stay equal: comparisons
learn run-to-run noise from runs with the same parameters and labels), never from another scenario's run."""

import pytest
from django.urls import reverse

from runs.baseline import parameters_key
from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.test_history import make_run

pytestmark = pytest.mark.django_db

PARAMS = {"users": 37, "spawn_rate": 3.5, "duration": 95, "host": "http://shop.test", "slots": 1,
          "env": {"REGION": "eu-west"}}


def test_run_again_fills_the_form_with_the_runs_parameters_labels_and_variables(client, alice, scenario):
    run = make_run(scenario, alice, params=PARAMS)
    Run.objects.filter(pk=run.pk).update(labels={"sut_version": "1.4.2", "env": "staging"})
    client.force_login(alice)
    detail = client.get(run.get_absolute_url()).content.decode()
    url = reverse("runs-create", args=[scenario.pk]) + f"?again={run.pk}"
    assert f'href="{url}"' in detail   # the run page's Run again button
    response = client.get(url)
    initial = response.context["form"].initial
    assert {k: initial[k] for k in ("users", "spawn_rate", "duration", "host", "slots")} == {
        "users": 37, "spawn_rate": 3.5, "duration": 95, "host": "http://shop.test", "slots": 1}
    assert initial["labels"] == "env=staging\nsut_version=1.4.2" and initial["env_text"] == "REGION=eu-west"
    page = response.content.decode()
    assert f"The parameters, labels and variables of <a href=\"{run.get_absolute_url()}\">run #{run.pk}</a>" in page
    assert "sut_version=1.4.2" in page and 'value="37"' in page


def test_run_again_of_another_scenarios_run_starts_from_the_defaults(client, alice, scenario, project, charlie,
                                                                    charlies_project):
    other = store_scenario(project, alice, name="Other")
    theirs = store_scenario(charlies_project, charlie, name="Theirs")
    for foreign in (make_run(other, alice, params=PARAMS), make_run(theirs, charlie, params=PARAMS)):
        client.force_login(alice)
        response = client.get(reverse("runs-create", args=[scenario.pk]) + f"?again={foreign.pk}")
        assert response.status_code == 200
        assert response.context["again"] is None
        assert response.context["form"].initial["users"] == scenario.default_users


def test_a_run_started_from_run_again_is_an_equal_run(client, alice, scenario, fake_workers):
    run = make_run(scenario, alice, params={**PARAMS, "env": {}, "host": "http://127.0.0.1:9"})
    Run.objects.filter(pk=run.pk).update(labels={"sut_version": "1.4.2"})
    run.refresh_from_db()
    client.force_login(alice)
    form = client.get(reverse("runs-create", args=[scenario.pk]) + f"?again={run.pk}").context["form"]
    data = {name: value for name, value in form.initial.items() if value not in (None, [])}
    response = client.post(reverse("runs-create", args=[scenario.pk]), data)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    again = Run.objects.exclude(pk=run.pk).get(scenario=scenario)
    assert again.labels == run.labels and parameters_key(again.params) == parameters_key(run.params)
