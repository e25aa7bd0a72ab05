"""Webhooks: a real local HTTP server receives signed JSON; failed attempts are retried with
backoff and every attempt is recorded."""

import hashlib
import hmac
import json

import pytest
from django.db import transaction

from automation import webhooks
from automation.models import Event, Webhook, WebhookDelivery
from controlcenter.celery import app as celery_app
from runs import services
from runs import signals as run_signals
from runs.models import Run


@pytest.fixture(autouse=True)
def allow_loopback_receiver(settings):
    """These tests' receiver listens on 127.0.0.1, which webhooks refuse unless the admin allows it
    (tests/automation/test_safe_urls.py covers the refusal)."""
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def finished_run(scenario):
    run = services.start_run(scenario, params={"host": "http://127.0.0.1:9"})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED, total_requests=1200, total_failures=30,
                                         rps=40.0, p50_ms=12.5, p95_ms=80.0, p99_ms=150.0)
    run.refresh_from_db()
    return run


@pytest.fixture
def hook(project, receiver):
    return Webhook.objects.create(project=project, url=receiver.url,
                                  events=[Event.RUN_FINISHED, Event.RUN_FAILED, Event.THRESHOLD_BROKEN])


def _verify(secret: str, request: dict) -> dict:
    """What a receiver does: recompute the HMAC of the raw body and compare in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, request["headers"]["X-Swarmdeck-Signature"])
    return json.loads(request["body"])


def _end(run, django_capture_on_commit_callbacks):
    """Send run_ended as the collector does; return the enqueue callbacks without running them
    (no control worker here: the tests call the delivery function themselves)."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        run_signals.run_ended.send(sender=Run, run_id=run.pk)
    return callbacks


def test_it_delivers_a_signed_payload_to_a_real_server(settings, receiver, hook, finished_run,
                                                       django_capture_on_commit_callbacks):
    settings.SWARMDECK_BASE_URL = "https://swarmdeck.example.com/"
    callbacks = _end(finished_run, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert len(callbacks) == 1 and delivery.event == Event.RUN_FINISHED and delivery.run == finished_run

    assert webhooks.attempt_delivery(delivery.pk) is None  # delivered: nothing more to do
    (request,) = receiver.requests
    payload = _verify(hook.secret, request)
    assert request["headers"]["X-Swarmdeck-Event"] == "run.finished"
    assert request["headers"]["Content-Type"] == "application/json"
    assert payload["run"]["id"] == finished_run.pk and payload["run"]["status"] == "finished"
    assert payload["run"]["verdict"] is None or isinstance(payload["run"]["verdict"], str)
    assert payload["scenario"]["name"] == "Checkout" and payload["project"]["slug"] == "shop"
    assert payload["figures"] == {"requests": 1200, "failures": 30, "failure_ratio": 0.025, "rps": 40.0,
                                  "p50_ms": 12.5, "p95_ms": 80.0, "p99_ms": 150.0}
    assert payload["run"]["url"] == f"https://swarmdeck.example.com/runs/{finished_run.pk}/"
    assert payload["run"]["report_url"] == f"https://swarmdeck.example.com/runs/{finished_run.pk}/report/report.html"

    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.DELIVERED and delivery.delivered_at
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 200, "")
    # A duplicate execution of the task finds nothing to do and sends nothing.
    assert webhooks.attempt_delivery(delivery.pk) is None and len(receiver.requests) == 1


def test_a_tampered_body_fails_verification(receiver, hook, finished_run, django_capture_on_commit_callbacks):
    _end(finished_run, django_capture_on_commit_callbacks)
    webhooks.attempt_delivery(WebhookDelivery.objects.get().pk)
    request = dict(receiver.requests[0], body=receiver.requests[0]["body"].replace(b"finished", b"failed"))
    with pytest.raises(AssertionError):
        _verify(hook.secret, request)


def test_it_retries_after_a_500_with_growing_countdowns(receiver, hook, finished_run,
                                                        django_capture_on_commit_callbacks):
    receiver.statuses = [500, 503, 200]
    _end(finished_run, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert webhooks.attempt_delivery(delivery.pk) == 10
    delivery.refresh_from_db()
    assert delivery.state == "pending" and delivery.last_status_code == 500 and "HTTP 500" in delivery.last_error
    assert delivery.next_attempt_at > delivery.created_at
    assert webhooks.attempt_delivery(delivery.pk) == 30
    assert webhooks.attempt_delivery(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.state == "delivered" and delivery.attempts == 3 and delivery.last_status_code == 200
    assert [(a.number, a.status_code) for a in delivery.attempt_log.all()] == [(1, 500), (2, 503), (3, 200)]
    # Every attempt carried the same body and a valid signature.
    assert len({r["body"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        _verify(hook.secret, request)


def test_the_task_retries_until_it_gives_up(settings, receiver, hook, finished_run,
                                            django_capture_on_commit_callbacks):
    """The real Celery task, run eagerly: self.retry re-runs it with the (tiny) backoff countdowns."""
    settings.SWARMDECK_WEBHOOK_BACKOFF = [0.01, 0.01, 0.01, 0.01]
    receiver.statuses = [500]
    callbacks = _end(finished_run, django_capture_on_commit_callbacks)
    celery_app.conf.task_always_eager = True
    try:
        callbacks[0]()  # deliver_webhook.delay(delivery id)
    finally:
        celery_app.conf.task_always_eager = False
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "failed" and delivery.attempts == 5 and delivery.next_attempt_at is None
    assert len(receiver.requests) == 5 and delivery.attempt_log.count() == 5


def test_it_records_a_receiver_that_does_not_answer(hook, finished_run, django_capture_on_commit_callbacks):
    from controlcenter.processes import free_port

    Webhook.objects.filter(pk=hook.pk).update(url=f"http://127.0.0.1:{free_port()}/nobody")
    _end(finished_run, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert webhooks.attempt_delivery(delivery.pk) == 10
    delivery.refresh_from_db()
    assert delivery.last_status_code is None and "refused" in delivery.last_error.lower()
    assert delivery.attempt_log.get().error == delivery.last_error


def test_it_sends_each_event_only_to_webhooks_that_want_it(project, receiver, finished_run, charlies_project,
                                                           django_capture_on_commit_callbacks):
    finished_only = Webhook.objects.create(project=project, url=receiver.url, events=[Event.RUN_FINISHED])
    failed_only = Webhook.objects.create(project=project, url=receiver.url, events=[Event.RUN_FAILED])
    Webhook.objects.create(project=project, url=receiver.url, events=[Event.RUN_FINISHED], enabled=False)
    Webhook.objects.create(project=charlies_project, url=receiver.url, events=[Event.RUN_FINISHED])

    _end(finished_run, django_capture_on_commit_callbacks)
    assert [d.webhook for d in WebhookDelivery.objects.all()] == [finished_only]

    Run.objects.filter(pk=finished_run.pk).update(status=Run.Status.FAILED)
    _end(finished_run, django_capture_on_commit_callbacks)
    assert WebhookDelivery.objects.filter(webhook=failed_only, event=Event.RUN_FAILED).count() == 1

    Run.objects.filter(pk=finished_run.pk).update(status=Run.Status.CANCELLED)
    assert _end(finished_run, django_capture_on_commit_callbacks) == []
    assert WebhookDelivery.objects.count() == 2


def test_a_broken_threshold_sends_its_criterion(receiver, hook, finished_run, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        run_signals.threshold_broken.send(sender=Run, run_id=finished_run.pk,
                                          criterion={"metric": "failure_ratio", "op": "<=", "limit": 0.2})
    delivery = WebhookDelivery.objects.get()
    webhooks.attempt_delivery(delivery.pk)
    payload = _verify(hook.secret, receiver.requests[0])
    assert receiver.requests[0]["headers"]["X-Swarmdeck-Event"] == "threshold.broken"
    assert payload["criterion"] == {"metric": "failure_ratio", "op": "<=", "limit": 0.2}


def test_a_receiver_error_never_breaks_the_sender(monkeypatch, hook, finished_run):
    def boom(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(webhooks, "create_deliveries", boom)
    run_signals.run_ended.send(sender=Run, run_id=finished_run.pk)  # the collector carries on
    assert not WebhookDelivery.objects.exists()


def test_a_maintainer_sends_a_signed_test_ping(client, alice, bob, charlie, charlies_project, project, receiver, hook):
    from django.urls import reverse

    from scenarios.models import Membership, Role

    url = reverse("automation-webhook-ping", args=[hook.pk])
    client.force_login(alice)
    page = client.post(url, follow=True).content.decode()
    assert "Ping answered 200 in" in page
    (request,) = receiver.requests
    assert request["headers"]["X-Swarmdeck-Event"] == "ping"
    assert _verify(hook.secret, request)["event"] == "ping"
    assert hook.deliveries.count() == 0  # a ping is not a delivery
    receiver.statuses = [500]
    assert "Ping failed: HTTP 500" in client.post(url, follow=True).content.decode()
    Membership.objects.create(project=project, user=bob, role=Role.RUNNER)
    client.force_login(bob)
    assert client.post(url).status_code == 403
    client.force_login(charlie)
    assert client.post(url).status_code == 404
    assert len(receiver.requests) == 2


def test_it_sends_one_shape_null_verdict_and_iso_timestamps(receiver, hook, finished_run,
                                                           django_capture_on_commit_callbacks):
    """Without criteria the verdict is JSON null, as the API says (not ""); every timestamp is
    ISO 8601 with a "T", as the API writes them."""
    from datetime import datetime

    from django.utils import timezone

    Run.objects.filter(pk=finished_run.pk).update(started_at=timezone.now(), ended_at=timezone.now())
    _end(finished_run, django_capture_on_commit_callbacks)
    webhooks.attempt_delivery(WebhookDelivery.objects.get().pk)
    run = _verify(hook.secret, receiver.requests[0])["run"]
    assert finished_run.verdict == "" and run["verdict"] is None
    for key in ("created_at", "started_at", "ended_at"):
        assert "T" in run[key] and " " not in run[key], (key, run[key])
        assert datetime.fromisoformat(run[key]).tzinfo is not None, key


def test_a_ping_has_the_project_object_and_user_agent_of_real_events(receiver, hook, finished_run,
                                                                     django_capture_on_commit_callbacks):
    assert webhooks.ping(hook)[:2] == (200, "")
    _end(finished_run, django_capture_on_commit_callbacks)
    webhooks.attempt_delivery(WebhookDelivery.objects.get().pk)
    ping, event = receiver.requests
    assert ping["headers"]["User-Agent"] == event["headers"]["User-Agent"]
    assert _verify(hook.secret, ping)["project"] == _verify(hook.secret, event)["project"] == {
        "slug": "shop", "name": "Shop"}
    assert "T" in _verify(hook.secret, ping)["sent_at"]
