"""One audit entry per kind of change, naming who made it and from which interface.

UI changes go through the Django test client, API changes through a real token, scheduled runs
through automation.schedules.fire and command-line runs through `runscenario`.
"""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from automation import schedules
from automation.models import Event, Schedule, Webhook
from runs import persistence, services
from runs.models import Run, Threshold
from scenarios.models import Membership, Role
from tests.api.conftest import ApiClient, key_for
from tests.conftest import upload
from tests.locustfiles import SHOP_V2
from tests.runs.test_history import row

HOST = "http://127.0.0.1:9"


def only(action: str) -> AuditEntry:
    """The one entry of this action (fails when there are none or several)."""
    [entry] = AuditEntry.objects.filter(action=action)
    return entry


def who(entry: AuditEntry) -> tuple:
    return entry.actor_name, entry.interface, entry.project_slug


@pytest.fixture
def ui(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def api(client, alice):
    return ApiClient(client, key_for(alice, name="ci-pipeline"))


# ---------------------------------------------------------------- projects and members

def test_a_project_created_and_edited_in_the_ui(ui, alice):
    ui.post(reverse("scenarios-project-create"), {"name": "Blog", "slug": "blog"})
    created = only("project.created")
    assert who(created) == ("alice", "ui", "blog") and created.actor == alice and created.subject == "project Blog"
    ui.post(reverse("scenarios-project-edit", args=["blog"]), {"name": "Blog", "slug": "blog", "description": "x"})
    edited = only("project.edited")
    assert who(edited) == ("alice", "ui", "blog") and edited.details == {"changed": ["description"]}


def test_a_project_created_through_the_api_names_the_token(api):
    assert api.post_json("/api/projects/", {"name": "Blog", "slug": "blog"}).status_code == 201
    assert who(only("project.created")) == ("alice", "api:ci-pipeline", "blog")


def test_an_api_call_from_a_browser_session_is_the_api_without_a_token_name(client, alice):
    client.force_login(alice)
    assert client.post("/api/projects/", {"name": "Blog", "slug": "blog"}, content_type="application/json",
                       ).status_code == 201
    assert who(only("project.created")) == ("alice", "api", "blog")


def test_members_added_changed_and_removed(ui, project, django_user_model):
    django_user_model.objects.create_user("dave")
    ui.post(reverse("scenarios-members", args=["shop"]), {"username": "dave", "role": "viewer"})
    added = only("member.added")
    assert who(added) == ("alice", "ui", "shop") and added.details == {"user": "dave", "role": "viewer"}
    member = Membership.objects.get(user__username="dave")
    ui.post(reverse("scenarios-member-role", args=["shop", member.pk]), {"role": "runner"})
    changed = only("member.role_changed")
    assert who(changed) == ("alice", "ui", "shop")
    assert changed.details == {"user": "dave", "from": "viewer", "to": "runner"}
    ui.post(reverse("scenarios-member-remove", args=["shop", member.pk]))
    removed = only("member.removed")
    assert who(removed) == ("alice", "ui", "shop") and removed.details == {"user": "dave", "role": "runner"}


def test_a_refused_member_change_records_nothing(ui, project, alice):
    own = Membership.objects.get(user=alice)
    ui.post(reverse("scenarios-member-role", args=["shop", own.pk]), {"role": "viewer"})  # the last maintainer
    ui.post(reverse("scenarios-member-remove", args=["shop", own.pk]))
    assert Membership.objects.get(user=alice).role == Role.MAINTAINER
    assert not AuditEntry.objects.filter(action__startswith="member.").exists()


# ---------------------------------------------------------------- scenarios and locustfiles

def test_a_scenario_created_edited_uploaded_and_deleted_in_the_ui(ui, project):
    ui.post(reverse("scenarios-create", args=["shop"]), {
        "name": "Checkout", "locustfile": upload("locustfile.py", SHOP_V2), "default_users": 5,
        "default_spawn_rate": 1, "default_duration": "30s", "default_slots": 1})
    created = only("scenario.created")
    assert who(created) == ("alice", "ui", "shop") and created.subject == "scenario Checkout"
    assert who(only("locustfile.uploaded")) == ("alice", "ui", "shop")
    scenario = project.scenarios.get()
    ui.post(reverse("scenarios-edit", args=[scenario.pk]), {
        "name": "Checkout", "default_users": 9, "default_spawn_rate": 1, "default_duration": "30s",
        "default_slots": 1})
    edited = only("scenario.edited")
    assert who(edited) == ("alice", "ui", "shop") and edited.details == {"scenario": scenario.pk,
                                                                          "changed": ["default_users"]}
    ui.post(reverse("scenarios-delete", args=[scenario.pk]))
    deleted = only("scenario.deleted")
    assert who(deleted) == ("alice", "ui", "shop") and deleted.details == {"scenario": scenario.pk}


def test_a_new_locustfile_version_uploaded_in_the_ui_and_through_the_api(ui, api, scenario):
    AuditEntry.objects.all().delete()
    ui.post(reverse("scenarios-upload", args=[scenario.pk]), {"locustfile": upload("locustfile.py", SHOP_V2)})
    first = only("locustfile.uploaded")
    assert who(first) == ("alice", "ui", "shop") and first.subject == "Checkout v2"
    assert first.details["version"] == 2 and first.details["sha256"] == scenario.current_version.sha256
    response = api.post(f"/api/scenarios/{scenario.pk}/locustfile/",
                        {"locustfile": upload("locustfile.py", SHOP_V2 + b"\n# v3\n")})
    assert response.status_code == 201
    third = AuditEntry.objects.get(action="locustfile.uploaded", details__version=3)
    assert who(third) == ("alice", "api:ci-pipeline", "shop")


def test_a_scenarios_environment_set_through_the_api(api, scenario):
    response = api.client.put(f"/api/scenarios/{scenario.pk}/environment/", {"variables": {"REGION": "eu"}},
                              content_type="application/json", headers=api.headers)
    assert response.status_code == 200
    assert who(only("scenario.edited")) == ("alice", "api:ci-pipeline", "shop")


# ---------------------------------------------------------------- secrets

SECRET_VALUE = "s3cr3t-value-never-logged"


def test_secrets_set_replaced_and_deleted_in_the_ui_by_name_only(ui, project):
    ui.post(reverse("scenarios-secrets", args=["shop"]), {"name": "API_TOKEN", "value": SECRET_VALUE})
    ui.post(reverse("scenarios-secrets", args=["shop"]), {"name": "API_TOKEN", "value": SECRET_VALUE + "-2"})
    ui.post(reverse("scenarios-secret-delete", args=["shop", "API_TOKEN"]))
    for action in ("secret.set", "secret.replaced", "secret.deleted"):
        entry = only(action)
        assert who(entry) == ("alice", "ui", "shop")
        assert entry.subject == "secret API_TOKEN" and entry.details == {"name": "API_TOKEN"}


def test_secrets_set_replaced_and_deleted_through_the_api(api, project):
    url = "/api/projects/shop/secrets/"
    assert api.post_json(url, {"name": "API_TOKEN", "value": SECRET_VALUE}).status_code == 201
    response = api.client.put(f"{url}API_TOKEN/", {"value": SECRET_VALUE + "-2"}, content_type="application/json",
                              headers=api.headers)
    assert response.status_code == 200
    assert api.request("delete", f"{url}API_TOKEN/").status_code == 204
    for action in ("secret.set", "secret.replaced", "secret.deleted"):
        assert who(only(action)) == ("alice", "api:ci-pipeline", "shop")


def test_no_entry_anywhere_holds_a_secrets_value(ui, api, project, scenario):
    ui.post(reverse("scenarios-secrets", args=["shop"]), {"name": "API_TOKEN", "value": SECRET_VALUE})
    api.post_json("/api/projects/shop/secrets/", {"name": "DB_PASSWORD", "value": SECRET_VALUE + "-db"})
    ui.post(reverse("scenarios-edit", args=[scenario.pk]), {
        "name": "Checkout", "default_users": 5, "default_spawn_rate": 1, "default_duration": "30s",
        "default_slots": 1, "secret_names": ["API_TOKEN"]})
    ui.post(reverse("runs-create", args=[scenario.pk]), {"users": 3, "spawn_rate": 1, "duration": "30s",
                                                         "host": HOST, "slots": 1})
    ui.post(reverse("scenarios-secret-delete", args=["shop", "API_TOKEN"]))
    assert AuditEntry.objects.filter(action__startswith="secret.").count() == 3
    assert Run.objects.get().params["secrets"] == ["API_TOKEN"]
    stored = [f"{e.subject} {e.details} {e.interface}" for e in AuditEntry.objects.all()]
    assert not [text for text in stored if SECRET_VALUE in text]
    exported = ui.get(reverse("audit-project-csv", args=["shop"])).content.decode()
    assert "API_TOKEN" in exported and "DB_PASSWORD" in exported and SECRET_VALUE not in exported


# ---------------------------------------------------------------- runs

def test_a_run_started_and_cancelled_in_the_ui(ui, scenario):
    ui.post(reverse("runs-create", args=[scenario.pk]), {"users": 3, "spawn_rate": 1, "duration": "30s",
                                                         "host": HOST, "slots": 1})
    run = Run.objects.get()
    started = only("run.started")
    assert who(started) == ("alice", "ui", "shop") and started.subject == f"run #{run.pk} of Checkout"
    assert started.details["users"] == 3 and started.details["trigger"] == "manual"
    ui.post(reverse("runs-stop", args=[run.pk]))
    cancelled = only("run.cancelled")
    assert who(cancelled) == ("alice", "ui", "shop") and cancelled.details == {"run": run.pk, "was": "queued"}


def test_a_run_started_and_stopped_through_the_api(api, scenario):
    response = api.post_json(f"/api/scenarios/{scenario.pk}/runs/", {"host": HOST})
    assert response.status_code == 201
    run = Run.objects.get()
    assert who(only("run.started")) == ("alice", "api:ci-pipeline", "shop")
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    assert api.post(f"/api/runs/{run.pk}/stop/").status_code == 202
    stopped = only("run.stopped")
    assert who(stopped) == ("alice", "api:ci-pipeline", "shop") and stopped.details["run"] == run.pk


def test_a_run_aborted_by_a_broken_criterion_is_recorded_as_the_systems(scenario, alice):
    run = services.start_run(scenario, user=alice, params={"host": HOST})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, started_at=timezone.now())
    run.refresh_from_db()
    Threshold.objects.create(scenario=scenario, metric=Threshold.Metric.P95, value=100, abort_on_fail=True)
    totals = [row("Aggregated", method="", requests=100, failures=0, rps=10.0, p50=50.0, p95=500.0, p99=900.0,
                  mean_ms=80.0)]
    persistence.enforce_thresholds(run, totals, elapsed=12.0)
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPING
    aborted = only("run.aborted")
    assert who(aborted) == ("", "system", "shop") and aborted.actor is None
    assert "p95" in aborted.details["note"]
    assert not AuditEntry.objects.filter(action="run.stopped").exists()


def test_a_run_reaching_its_duration_is_no_change_and_records_nothing(scenario, alice):
    run = services.start_run(scenario, user=alice, params={"host": HOST})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    services.request_stop(run, note="duration reached", audit_action=None)
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPING
    assert not AuditEntry.objects.filter(action__in=["run.stopped", "run.aborted"]).exists()


def test_a_scheduled_run_names_its_schedule(scenario, alice):
    schedule = schedules.save_schedule(Schedule(scenario=scenario, name="nightly", preset=Schedule.Preset.NIGHTLY,
                                                host=HOST, created_by=alice))
    run = schedules.fire(schedule)
    assert isinstance(run, Run)
    started = only("run.started")
    assert who(started) == ("", f"schedule:{schedule.pk}", "shop") and started.details["trigger"] == "schedule"


def test_a_run_started_from_the_command_line(scenario, alice, monkeypatch):
    """runscenario with --timeout 0: the run is queued, then cancelled at once as the timeout passed."""
    monkeypatch.setattr(services, "collector_running", lambda: True)
    monkeypatch.setattr(services, "capacity_problem", lambda slots: None)
    with pytest.raises(SystemExit):
        call_command("runscenario", str(scenario.pk), "--user", "alice", "--host", HOST, "--timeout", "0",
                     stdout=io.StringIO(), stderr=io.StringIO())
    assert who(only("run.started")) == ("alice", "cli", "shop")
    cancelled = only("run.cancelled")
    assert who(cancelled) == ("", "cli", "shop")  # the command stopped it, not alice


# ---------------------------------------------------------------- schedules and webhooks

def _schedule_data(**extra):
    return {"name": "hourly check", "preset": "custom", "cron": "5 * * * *", "timezone": "UTC", "overlap": "skip",
            "enabled": "on", "users": "", "spawn_rate": "", "duration": "", "host": HOST, "slots": "", **extra}


def test_schedules_created_changed_toggled_and_deleted(ui, scenario):
    ui.post(reverse("automation-schedule-create", args=[scenario.pk]), _schedule_data())
    schedule = Schedule.objects.get()
    assert who(only("schedule.created")) == ("alice", "ui", "shop")
    ui.post(reverse("automation-schedule-edit", args=[schedule.pk]), _schedule_data(cron="10 * * * *"))
    assert only("schedule.edited").details == {"schedule": schedule.pk, "scenario": scenario.pk, "changed": ["cron"]}
    ui.post(reverse("automation-schedule-toggle", args=[schedule.pk]))
    assert who(only("schedule.disabled")) == ("alice", "ui", "shop")
    ui.post(reverse("automation-schedule-delete", args=[schedule.pk]))
    assert only("schedule.deleted").subject == "schedule hourly check"


def test_webhooks_created_changed_and_deleted_without_their_url_path_or_secret(ui, project, settings):
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    ui.post(reverse("automation-webhooks", args=["shop"]),
            {"url": "http://127.0.0.1:9/hooks/T0KEN-IN-PATH", "events": [Event.RUN_FAILED], "enabled": "on"})
    webhook = Webhook.objects.get()
    ui.post(reverse("automation-webhook-edit", args=[webhook.pk]),
            {"url": "http://127.0.0.1:9/hooks/T0KEN-IN-PATH", "events": [Event.RUN_FINISHED], "enabled": "on"})
    ui.post(reverse("automation-webhook-secret", args=[webhook.pk]))
    webhook.refresh_from_db()
    ui.post(reverse("automation-webhook-delete", args=[webhook.pk]))
    actions = ["webhook.created", "webhook.edited", "webhook.secret_renewed", "webhook.deleted"]
    for action in actions:
        entry = only(action)
        assert who(entry) == ("alice", "ui", "shop") and entry.subject == "webhook http://127.0.0.1:9/…"
    assert only("webhook.edited").details == {"webhook": webhook.pk, "changed": ["events"]}
    stored = " ".join(f"{e.subject} {e.details}" for e in AuditEntry.objects.all())
    assert "T0KEN-IN-PATH" not in stored and webhook.secret not in stored
