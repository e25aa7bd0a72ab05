"""Schedule and webhook pages for alice (maintainer), bob (viewer, then runner) and charlie (outsider)."""

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from automation import schedules
from automation.models import Event, Schedule, Webhook
from scenarios.models import Role

HOST = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def allow_loopback_webhooks(settings):
    """The webhook URLs here are on 127.0.0.1, which the form refuses unless the admin allows it."""
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def schedule(scenario):
    return schedules.save_schedule(Schedule(scenario=scenario, name="nightly", preset=Schedule.Preset.NIGHTLY,
                                            host=HOST))


@pytest.fixture
def webhook(project):
    return Webhook.objects.create(project=project, url="http://127.0.0.1:9/hook/abc",
                                  events=[Event.RUN_FINISHED])


@pytest.fixture
def objects(scenario, schedule, webhook, bob_membership, charlies_project):
    return {"scenario": scenario, "schedule": schedule, "webhook": webhook}


def _schedule_data(**extra):
    return {"name": "hourly check", "preset": "custom", "cron": "5 * * * *", "timezone": "UTC", "overlap": "skip",
            "enabled": "on", "users": "", "spawn_rate": "", "duration": "", "host": HOST, "slots": "", **extra}


def _webhook_data(**extra):
    return {"url": "http://127.0.0.1:9/other", "events": [Event.RUN_FAILED], "enabled": "on", **extra}


ROUTES = [
    ("automation-schedule-create", "scenario", "get", Role.MAINTAINER),
    ("automation-schedule-create", "scenario", "post", Role.MAINTAINER),
    ("automation-schedule", "schedule", "get", Role.VIEWER),
    ("automation-schedule-edit", "schedule", "get", Role.MAINTAINER),
    ("automation-schedule-edit", "schedule", "post", Role.MAINTAINER),
    ("automation-schedule-toggle", "schedule", "post", Role.MAINTAINER),
    ("automation-schedule-delete", "schedule", "get", Role.MAINTAINER),
    ("automation-schedule-delete", "schedule", "post", Role.MAINTAINER),
    ("automation-webhooks", "project", "get", Role.VIEWER),
    ("automation-webhooks", "project", "post", Role.MAINTAINER),
    ("automation-webhook", "webhook", "get", Role.VIEWER),
    ("automation-webhook-edit", "webhook", "get", Role.MAINTAINER),
    ("automation-webhook-edit", "webhook", "post", Role.MAINTAINER),
    ("automation-webhook-secret", "webhook", "post", Role.MAINTAINER),
    ("automation-webhook-delete", "webhook", "get", Role.MAINTAINER),
    ("automation-webhook-delete", "webhook", "post", Role.MAINTAINER),
]
IDS = [f"{method.upper()} {name}" for name, _, method, _ in ROUTES]


def _request(client, objects, name, subject, method):
    arg = "shop" if subject == "project" else objects[subject].pk
    url = reverse(name, args=[arg])
    if method == "get":
        return client.get(url)
    data = _webhook_data() if "webhook" in name else _schedule_data()
    return client.post(url, data)


def _unchanged(objects):
    schedule, webhook = objects["schedule"], objects["webhook"]
    assert Schedule.objects.filter(pk=schedule.pk, enabled=True, name="nightly").exists()
    assert Webhook.objects.filter(pk=webhook.pk, url=webhook.url, secret=webhook.secret).exists()
    assert Schedule.objects.count() == 1 and Webhook.objects.count() == 1


@pytest.mark.parametrize("name,subject,method,role", ROUTES, ids=IDS)
def test_it_answers_404_to_an_outsider(client, charlie, objects, name, subject, method, role):
    client.force_login(charlie)
    assert _request(client, objects, name, subject, method).status_code == 404
    _unchanged(objects)


@pytest.mark.parametrize("name,subject,method,role", ROUTES, ids=IDS)
def test_it_needs_the_maintainer_role_to_change_things(client, bob, bob_membership, objects, name, subject, method,
                                                        role):
    client.force_login(bob)
    for bobs_role in (Role.VIEWER, Role.RUNNER):
        bob_membership.role = bobs_role
        bob_membership.save()
        response = _request(client, objects, name, subject, method)
        assert response.status_code == (403 if role == Role.MAINTAINER else 200)
        _unchanged(objects)


@pytest.mark.parametrize("name,subject,method,role", ROUTES, ids=IDS)
def test_a_maintainer_can_do_everything(client, alice, objects, name, subject, method, role):
    client.force_login(alice)
    assert _request(client, objects, name, subject, method).status_code in (200, 302)


def test_it_creates_a_schedule_from_the_form(client, alice, scenario):
    client.force_login(alice)
    response = client.post(reverse("automation-schedule-create", args=[scenario.pk]),
                           _schedule_data(timezone="Asia/Tokyo", duration="5m", users="20"))
    assert response.status_code == 302
    schedule = Schedule.objects.get()
    assert (schedule.cron, schedule.timezone, schedule.duration, schedule.users) == ("5 * * * *", "Asia/Tokyo", 300, 20)
    assert schedule.created_by == alice and PeriodicTask.objects.filter(pk=schedule.periodic_task_id).exists()


def test_it_says_which_cron_field_is_wrong(client, alice, scenario):
    client.force_login(alice)
    response = client.post(reverse("automation-schedule-create", args=[scenario.pk]), _schedule_data(cron="0 25 * * *"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["cron"]
    assert "The hour field “25” is invalid" in errors["cron"][0]
    assert "The hour field" in response.content.decode()
    response = client.post(reverse("automation-schedule-create", args=[scenario.pk]),
                           _schedule_data(cron="", timezone="Mars/Olympus"))
    assert set(response.context["form"].errors) == {"cron", "timezone"}
    assert not Schedule.objects.exists() and not PeriodicTask.objects.exists()


def test_a_preset_replaces_the_cron_expression(client, alice, scenario):
    client.force_login(alice)
    client.post(reverse("automation-schedule-create", args=[scenario.pk]), _schedule_data(preset="weekly", cron=""))
    assert Schedule.objects.get().cron == "0 2 * * 1"


def test_a_new_cron_expression_under_a_preset_timing_is_refused_not_dropped(client, alice, scenario):
    """From a trial: the edit form shows the preset's expression; typing another one while the timing stays
    'Nightly' saved the nightly timing and said nothing."""
    client.force_login(alice)
    client.post(reverse("automation-schedule-create", args=[scenario.pk]), _schedule_data(preset="nightly", cron=""))
    schedule = Schedule.objects.get()
    page = client.get(reverse("automation-schedule-edit", args=[schedule.pk])).content.decode()
    assert 'value="0 2 * * *"' in page   # the expression the form shows
    response = client.post(reverse("automation-schedule-edit", args=[schedule.pk]),
                           _schedule_data(preset="nightly", cron="30 6 * * 1-5"))
    assert response.status_code == 200
    assert "used only with the timing “Cron expression”" in response.context["form"].errors["cron"][0]
    assert "clear this field to keep “Nightly at 02:00 (0 2 * * *)”" in response.context["form"].errors["cron"][0]
    assert Schedule.objects.get().cron == "0 2 * * *"
    # Unchanged (as shown), or switching a custom timing back to a preset, saves the preset.
    assert client.post(reverse("automation-schedule-edit", args=[schedule.pk]),
                       _schedule_data(preset="nightly", cron="0 2 * * *")).status_code == 302
    client.post(reverse("automation-schedule-edit", args=[schedule.pk]), _schedule_data(preset="custom",
                                                                                         cron="30 6 * * 1-5"))
    assert Schedule.objects.get().cron == "30 6 * * 1-5"
    assert client.post(reverse("automation-schedule-edit", args=[schedule.pk]),
                       _schedule_data(preset="weekly", cron="30 6 * * 1-5")).status_code == 302
    assert Schedule.objects.get().cron == "0 2 * * 1"


def test_a_checkbox_stands_beside_its_own_label(client, alice, scenario):
    client.force_login(alice)
    page = client.get(reverse("automation-schedule-create", args=[scenario.pk])).content.decode()
    assert '<label for="id_enabled"><input type="checkbox" name="enabled"' in page


def _beat_entry(schedule_id):
    """What beat reads for a schedule: its PeriodicTask's timing and switch."""
    task = PeriodicTask.objects.select_related("crontab").get(pk=Schedule.objects.get(pk=schedule_id).periodic_task_id)
    crontab = task.crontab
    return (crontab.minute, crontab.hour, crontab.day_of_week, str(crontab.timezone)), task.enabled


def test_it_keeps_beat_in_step_with_every_change_made_in_the_pages(client, alice, scenario):
    client.force_login(alice)
    client.post(reverse("automation-schedule-create", args=[scenario.pk]), _schedule_data(timezone="Asia/Tokyo"))
    schedule = Schedule.objects.get()
    task_id = schedule.periodic_task_id
    assert _beat_entry(schedule.pk) == (("5", "*", "*", "Asia/Tokyo"), True)

    response = client.post(reverse("automation-schedule-edit", args=[schedule.pk]),
                           _schedule_data(preset="custom", cron="30 6 * * 1-5", timezone="Europe/Paris"))
    assert response.status_code == 302
    assert _beat_entry(schedule.pk) == (("30", "6", "1-5", "Europe/Paris"), True)
    client.post(reverse("automation-schedule-edit", args=[schedule.pk]), _schedule_data(preset="weekly", cron=""))
    assert _beat_entry(schedule.pk) == (("0", "2", "1", "UTC"), True)

    client.post(reverse("automation-schedule-toggle", args=[schedule.pk]))
    assert _beat_entry(schedule.pk) == (("0", "2", "1", "UTC"), False)
    client.post(reverse("automation-schedule-edit", args=[schedule.pk]), _schedule_data(enabled=""))
    assert _beat_entry(schedule.pk)[1] is False
    client.post(reverse("automation-schedule-toggle", args=[schedule.pk]))
    assert _beat_entry(schedule.pk)[1] is True
    assert list(PeriodicTask.objects.values_list("pk", flat=True)) == [task_id]

    client.post(reverse("automation-schedule-delete", args=[schedule.pk]))
    assert not Schedule.objects.exists() and not PeriodicTask.objects.exists()


def test_it_keeps_beat_in_step_with_changes_made_in_the_admin(client, alice, scenario, schedule):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    url = reverse("admin:automation_schedule_change", args=[schedule.pk])
    data = {"scenario": scenario.pk, "name": "nightly", "preset": "custom", "cron": "45 23 * * *", "timezone": "UTC",
            "every_seconds": "", "users": "", "spawn_rate": "", "duration": "", "host": HOST, "slots": "",
            "overlap": "skip", "created_by": ""}  # "enabled" left out: the checkbox is cleared
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _beat_entry(schedule.pk) == (("45", "23", "*", "UTC"), False)

    response = client.post(reverse("admin:automation_schedule_changelist"),
                           {"action": "delete_selected", "_selected_action": [schedule.pk], "post": "yes"})
    assert response.status_code == 302
    assert not Schedule.objects.exists() and not PeriodicTask.objects.exists()


def test_the_scenario_page_shows_schedules_with_next_times_runs_and_skips(client, alice, bob, bob_membership,
                                                                          scenario, schedule):
    run = schedules.fire(schedule)
    skip = schedules.fire(schedule)
    client.force_login(alice)
    page = client.get(scenario.get_absolute_url()).content.decode()
    assert 'id="schedules"' in page and "nightly" in page
    assert page.count(" 02:00 UTC<br>") == 5  # the next five fire times
    assert f"#{run.pk}</a>" in page and skip.reason[:40] in page
    assert reverse("automation-schedule-edit", args=[schedule.pk]) in page

    client.force_login(bob)
    page = client.get(scenario.get_absolute_url()).content.decode()
    assert "nightly" in page and f"#{run.pk}</a>" in page
    assert reverse("automation-schedule-edit", args=[schedule.pk]) not in page
    detail = client.get(schedule.get_absolute_url()).content.decode()
    assert skip.reason in detail and f"#{run.pk}" in detail


def test_only_maintainers_see_webhook_secrets_and_full_urls(client, alice, bob, bob_membership, webhook, project):
    client.force_login(alice)
    assert webhook.secret in client.get(webhook.get_absolute_url()).content.decode()
    assert "Webhooks" in client.get(project.get_absolute_url()).content.decode()
    client.force_login(bob)
    for url in (webhook.get_absolute_url(), reverse("automation-webhooks", args=["shop"])):
        page = client.get(url).content.decode()
        assert webhook.secret not in page and "/hook/abc" not in page and "http://127.0.0.1:9/…" in page


def test_a_maintainer_adds_a_webhook_with_a_generated_secret(client, alice, project):
    client.force_login(alice)
    response = client.post(reverse("automation-webhooks", args=["shop"]),
                           _webhook_data(url="http://127.0.0.1:8080/in", events=[Event.RUN_FINISHED,
                                                                                  Event.THRESHOLD_BROKEN]))
    hook = Webhook.objects.get()
    assert response.status_code == 302 and response["Location"] == hook.get_absolute_url()
    assert len(hook.secret) == 64 and hook.events == [Event.RUN_FINISHED, Event.THRESHOLD_BROKEN]
    old = hook.secret
    client.post(reverse("automation-webhook-secret", args=[hook.pk]))
    hook.refresh_from_db()
    assert hook.secret != old
    response = client.post(reverse("automation-webhooks", args=["shop"]), _webhook_data(url="ftp://example.com/x"))
    assert "url" in response.context["form"].errors and Webhook.objects.count() == 1


def test_it_refuses_a_webhook_to_an_internal_address_unless_the_admin_allows_it(settings, client, alice, project):
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = False
    client.force_login(alice)
    url = reverse("automation-webhooks", args=["shop"])
    response = client.post(url, _webhook_data(url="http://127.0.0.1:8080/in"))
    assert response.status_code == 200 and not Webhook.objects.exists()
    assert response.context["form"].errors["url"] == [(
        "127.0.0.1 is a loopback address; Swarmdeck does not send webhooks to internal addresses (an admin can "
        "allow it with SWARMDECK_WEBHOOK_ALLOW_PRIVATE=1).")]
    assert "SWARMDECK_WEBHOOK_ALLOW_PRIVATE=1" in response.content.decode()
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    assert client.post(url, _webhook_data(url="http://127.0.0.1:8080/in")).status_code == 302
