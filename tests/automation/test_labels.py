"""Labels of schedules (set on the schedule's form, frozen on every run it fires) and in webhook payloads."""

import json

from django.db import transaction
from django.urls import reverse

from automation import schedules, webhooks
from automation.models import Event, Schedule, ScheduleSkip, Webhook, WebhookDelivery
from runs import services
from runs import signals as run_signals
from runs.models import Run
from tests.automation.test_views import _schedule_data

HOST = "http://127.0.0.1:9"


def test_a_schedule_keeps_its_labels_and_every_run_it_fires_carries_them(client, alice, scenario):
    client.force_login(alice)
    form = client.get(reverse("automation-schedule-create", args=[scenario.pk])).content.decode()
    assert 'name="labels"' in form and "Every run this schedule starts carries them." in form
    response = client.post(reverse("automation-schedule-create", args=[scenario.pk]),
                           _schedule_data(labels="env=staging, suite=nightly"))
    assert response.status_code == 302
    schedule = Schedule.objects.get()
    assert schedule.labels == {"env": "staging", "suite": "nightly"}

    run = schedules.fire(schedule)
    assert isinstance(run, Run) and run.trigger == Run.Trigger.SCHEDULE
    run.refresh_from_db()
    assert run.labels == {"env": "staging", "suite": "nightly"}

    # The edit form shows them as lines; a run already fired keeps what it was started with.
    edit = client.get(reverse("automation-schedule-edit", args=[schedule.pk]))
    assert edit.context["form"]["labels"].value() == "env=staging\nsuite=nightly"
    client.post(reverse("automation-schedule-edit", args=[schedule.pk]), _schedule_data(labels="env=prod"))
    schedule.refresh_from_db()
    assert schedule.labels == {"env": "prod"}
    run.refresh_from_db()
    assert run.labels == {"env": "staging", "suite": "nightly"}
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)
    assert schedules.fire(schedule).labels == {"env": "prod"}

    page = client.get(schedule.get_absolute_url()).content.decode()
    assert 'class="badge label"' in page and "env=prod" in page


def test_the_schedule_form_names_a_bad_label_and_saves_nothing(client, alice, scenario):
    client.force_login(alice)
    response = client.post(reverse("automation-schedule-create", args=[scenario.pk]),
                           _schedule_data(labels="env=staging\nnightly"))
    assert response.status_code == 200 and not Schedule.objects.exists()
    assert response.context["form"].errors["labels"] == ["“nightly” is not a label: write key=value, e.g. env=staging."]


def test_a_fire_with_labels_that_no_longer_fit_records_why(scenario):
    """Only save_schedule writes schedules, and the form checks labels: one written otherwise (the admin's raw
    JSON) is refused at fire time, as a skip that says why."""
    schedule = schedules.save_schedule(Schedule(scenario=scenario, name="raw", cron="0 * * * *", host=HOST,
                                                labels={"Env": "x"}))
    skip = schedules.fire(schedule)
    assert isinstance(skip, ScheduleSkip) and skip.kind == ScheduleSkip.Kind.ERROR
    assert "The label key “Env” is not valid" in skip.reason and not Run.objects.exists()


def test_webhook_payloads_carry_the_runs_labels(settings, project, scenario, django_capture_on_commit_callbacks):
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    Webhook.objects.create(project=project, url="http://127.0.0.1:9/hook", events=[Event.RUN_FINISHED])
    run = services.start_run(scenario, params={"host": HOST}, labels={"sut_version": "1.4.2", "env": "staging"})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        run_signals.run_ended.send(sender=Run, run_id=run.pk)
    delivery = WebhookDelivery.objects.get()
    assert delivery.payload["run"]["labels"] == {"env": "staging", "sut_version": "1.4.2"}
    body = json.loads(webhooks.encode(delivery.payload))  # what is POSTed, signed
    assert body["run"]["labels"] == {"env": "staging", "sut_version": "1.4.2"}
    unlabelled = services.start_run(scenario, params={"host": HOST})
    assert webhooks.run_payload(unlabelled, Event.RUN_FINISHED)["run"]["labels"] == {}
