"""Run pages for alice (maintainer), bob (viewer, then runner) and charlie (outsider)."""

import pytest
from django.urls import reverse

from runs import services
from runs.models import Run
from scenarios.models import Role


@pytest.fixture
def run(scenario, alice):
    return services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9"})


def _start_data(**extra):
    return {"users": 3, "spawn_rate": 1, "duration": "30s", "host": "http://127.0.0.1:9", "slots": 1, **extra}


ROUTES = [
    ("runs-create", lambda o: [o["scenario"].pk], "get", Role.RUNNER),
    ("runs-create", lambda o: [o["scenario"].pk], "post", Role.RUNNER),
    ("runs-detail", lambda o: [o["run"].pk], "get", Role.VIEWER),
    ("runs-status", lambda o: [o["run"].pk], "get", Role.VIEWER),
    ("runs-stop", lambda o: [o["run"].pk], "post", Role.RUNNER),
    ("runs-list", lambda o: ["shop"], "get", Role.VIEWER),
]
IDS = [f"{m.upper()} {n}" for n, _, m, _ in ROUTES]


@pytest.fixture
def objects(scenario, run, bob_membership, charlies_project):
    return {"scenario": scenario, "run": run}


def _request(client, name, args, method):
    url = reverse(name, args=args)
    return client.get(url) if method == "get" else client.post(url, _start_data())


@pytest.mark.parametrize("name,args,method,role", ROUTES, ids=IDS)
def test_it_answers_404_to_an_outsider(client, charlie, objects, name, args, method, role):
    client.force_login(charlie)
    assert _request(client, name, args(objects), method).status_code == 404
    assert Run.objects.get(pk=objects["run"].pk).status == Run.Status.QUEUED


@pytest.mark.parametrize("name,args,method,role", ROUTES, ids=IDS)
def test_it_needs_the_runner_role_to_start_and_stop(client, bob, bob_membership, objects, name, args, method, role):
    client.force_login(bob)
    response = _request(client, name, args(objects), method)
    assert response.status_code == (403 if role == Role.RUNNER else 200)
    bob_membership.role = Role.RUNNER
    bob_membership.save()
    response = _request(client, name, args(objects), method)
    assert response.status_code in (200, 302)


def test_it_starts_a_run_with_frozen_parameters(client, alice, scenario):
    client.force_login(alice)
    response = client.post(reverse("runs-create", args=[scenario.pk]), _start_data(users=7, duration="1m", slots=2))
    run = Run.objects.get()
    assert response["Location"] == run.get_absolute_url()
    assert run.params["users"] == 7 and run.params["duration"] == 60 and run.params["slots"] == 2
    assert run.version == scenario.current_version and run.created_by == alice
    assert run.status == Run.Status.QUEUED
    scenario.default_users = 99
    scenario.save()
    run.refresh_from_db()
    assert run.params["users"] == 7


def test_it_prefills_the_form_from_the_scenario(client, alice, scenario):
    scenario.default_users, scenario.default_host = 42, "http://127.0.0.1:8089"
    scenario.save()
    client.force_login(alice)
    page = client.get(reverse("runs-create", args=[scenario.pk])).content.decode()
    assert 'value="42"' in page and 'value="http://127.0.0.1:8089"' in page


def test_it_rejects_garbage_parameters(client, alice, scenario):
    client.force_login(alice)
    response = client.post(reverse("runs-create", args=[scenario.pk]),
                           {"users": "-1", "spawn_rate": "fast", "duration": "never", "slots": 0, "host": "nope"})
    assert response.status_code == 200
    assert response.content.decode().count('class="errorlist') >= 5
    assert not Run.objects.exists()


def test_it_shows_a_queued_runs_position_and_cancels_it(client, alice, run):
    client.force_login(alice)
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'position <strong id="queue-position">1</strong>' in page
    client.post(reverse("runs-stop", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED and "alice" in run.reason


def test_it_splits_users_with_the_remainder_spread():
    assert services.split(10, 3) == [4, 3, 3]
    assert services.split(2, 4) == [1, 1, 0, 0]
    assert sum(services.split(1001, 7)) == 1001


def test_it_hides_other_projects_runs_on_the_cluster_page(client, charlie, run, charlies_project):
    client.force_login(charlie)
    page = client.get(reverse("runs-cluster")).content.decode()
    assert "another project's run" in page
    assert "Checkout" not in page and run.get_absolute_url() not in page


def test_the_details_say_when_users_were_changed_while_running(client, alice, run):
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED,
                                         params={**run.params, "users": 4, "live_users": 8})
    client.force_login(alice)
    page = " ".join(client.get(reverse("runs-detail", args=[run.pk])).content.decode().split())
    assert "<dt>Users</dt><dd>4 → 8 <span class=\"muted small\">(changed while running)</span></dd>" in page
