"""Webhook payloads, signatures and delivery attempts.

A delivery is created when the event happens (its payload is fixed then) and POSTed by the
control worker: one attempt per task execution, retried by the task with growing countdowns.
"""

import hashlib
import hmac
import json
import logging
import os
import time
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from automation import safe_http
from automation.models import Event, Webhook, WebhookAttempt, WebhookDelivery
from runs import labels as run_labels
from runs.models import Run
from scenarios.secrets import masker_for_run

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Swarmdeck-Signature"
EVENT_HEADER = "X-Swarmdeck-Event"
DELIVERY_HEADER = "X-Swarmdeck-Delivery"
USER_AGENT = "Swarmdeck-Webhook/1"
DEFAULT_BACKOFF = (10, 30, 120, 600)  # seconds before attempts 2..5
REQUEST_TIMEOUT = 10.0


def base_url() -> str:
    """Where Swarmdeck is reachable from receivers, for links in payloads."""
    value = getattr(settings, "SWARMDECK_BASE_URL", None) or os.environ.get("SWARMDECK_BASE_URL")
    return (value or "http://127.0.0.1:8000").rstrip("/")


def backoff() -> tuple[float, ...]:
    """Countdowns between attempts; len + 1 attempts in all. SWARMDECK_WEBHOOK_BACKOFF="10,30,120,600"."""
    value = getattr(settings, "SWARMDECK_WEBHOOK_BACKOFF", None) or os.environ.get("SWARMDECK_WEBHOOK_BACKOFF")
    if not value:
        return DEFAULT_BACKOFF
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    return tuple(float(part) for part in value)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _plain(value):
    """JSON for what json cannot encode: datetimes as ISO 8601 (with "T", as the API writes them),
    anything else (choices, criterion objects) as its string."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def project_object(project) -> dict:
    """The project as every payload names it, the test ping included."""
    return {"slug": project.slug, "name": project.name}


def headers(event: str, secret: str, body: bytes, delivery_id=None) -> dict:
    """The headers of every POST, real events and pings alike."""
    result = {"Content-Type": "application/json", "User-Agent": USER_AGENT, EVENT_HEADER: event}
    if delivery_id is not None:
        result[DELIVERY_HEADER] = str(delivery_id)
    result[SIGNATURE_HEADER] = sign(secret, body)
    return result


def run_payload(run: Run, event: str, criterion=None) -> dict:
    base = base_url()
    requests_total = run.total_requests or 0
    # The verdict is null without criteria, as in the API.
    payload = {
        "event": event,
        "run": {
            "id": run.pk, "status": run.status, "reason": run.reason, "verdict": run.verdict or None,
            "trigger": run.trigger, "trigger_detail": run.trigger_detail, "degraded": run.degraded,
            "labels": run_labels.ordered(run.labels),
            "created_at": run.created_at, "started_at": run.started_at, "ended_at": run.ended_at,
            "url": base + run.get_absolute_url(), "report_url": base + reverse("runs-report-html", args=[run.pk]),
        },
        "scenario": {"id": run.scenario_id, "name": run.scenario.name},
        "project": project_object(run.project),
        "figures": {
            "requests": requests_total, "failures": run.total_failures or 0,
            "failure_ratio": (run.total_failures / requests_total) if requests_total else 0.0,
            "rps": run.rps, "p50_ms": run.p50_ms, "p95_ms": run.p95_ms, "p99_ms": run.p99_ms,
        },
    }
    if criterion is not None:
        payload["criterion"] = criterion
    # Plain JSON types only, as it will be sent; the values of the run's secrets masked (a reason could quote one).
    return masker_for_run(run).data(json.loads(json.dumps(payload, default=_plain)))


def event_for_end(run: Run) -> str | None:
    """A cancelled run is neither finished nor failed: it sends nothing."""
    return {Run.Status.FINISHED: Event.RUN_FINISHED, Run.Status.FAILED: Event.RUN_FAILED}.get(run.status)


def create_deliveries(run: Run, event: str, criterion=None) -> list[WebhookDelivery]:
    """One delivery per enabled webhook of the run's project that wants this event; each is
    enqueued once the surrounding transaction commits."""
    from automation.tasks import deliver_webhook

    hooks = [hook for hook in Webhook.objects.filter(project_id=run.project_id, enabled=True) if event in hook.events]
    if not hooks:
        return []
    payload = run_payload(run, event, criterion)
    deliveries = []
    for hook in hooks:
        delivery = WebhookDelivery.objects.create(webhook=hook, run=run, event=event, payload=payload,
                                                  next_attempt_at=timezone.now())
        transaction.on_commit(lambda pk=delivery.pk: deliver_webhook.delay(pk))
        deliveries.append(delivery)
    log.info("Run %s: %s queued for %s webhook(s).", run.pk, event, len(deliveries))
    return deliveries


def post(url: str, body: bytes, headers: dict) -> tuple[int | None, str]:
    """(status code, error text); the error is empty for a 2xx answer. Internal addresses are
    refused when connecting, unless SWARMDECK_WEBHOOK_ALLOW_PRIVATE (automation/safe_http.py)."""
    return safe_http.post(url, body, headers, timeout=REQUEST_TIMEOUT, allow_private=safe_http.private_allowed())


def ping(webhook) -> tuple[int | None, str, float]:
    """Send a signed test event now (not recorded as a delivery): (status, error, seconds taken)."""
    body = encode({"event": "ping", "webhook": webhook.pk, "project": project_object(webhook.project),
                   "sent_at": timezone.now().isoformat(),
                   "links": {"webhook": base_url() + webhook.get_absolute_url()}})
    started = time.monotonic()
    status, error = post(webhook.url, body, headers("ping", webhook.secret, body))
    return status, error, time.monotonic() - started


def attempt_delivery(delivery_id: int) -> float | None:
    """POST a pending delivery once and record the attempt.

    Returns the countdown before the next attempt, or None when there is nothing more to do
    (delivered, out of attempts, gone, or already taken by another execution).
    """
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.state != WebhookDelivery.State.PENDING:
        return None
    webhook = delivery.webhook
    if not webhook.enabled:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state=WebhookDelivery.State.FAILED, next_attempt_at=None, last_error="The webhook was disabled.")
        return None
    number = delivery.attempts + 1
    # Claim this attempt number, so a duplicate task execution is a no-op.
    if not WebhookDelivery.objects.filter(pk=delivery.pk, state=WebhookDelivery.State.PENDING,
                                          attempts=delivery.attempts).update(attempts=number):
        return None
    body = encode(delivery.payload)
    started = time.monotonic()
    status, error = post(webhook.url, body, headers(delivery.event, webhook.secret, body, delivery.pk))
    WebhookAttempt.objects.create(delivery=delivery, number=number, status_code=status, error=error[:2000],
                                  duration_ms=(time.monotonic() - started) * 1000)
    now = timezone.now()
    delays = backoff()
    countdown = None
    update = {"last_status_code": status, "last_error": error[:2000]}
    if status is not None and 200 <= status < 300:
        update.update(state=WebhookDelivery.State.DELIVERED, delivered_at=now, next_attempt_at=None)
        log.info("Webhook delivery %s (%s, run %s) delivered on attempt %s.", delivery.pk, delivery.event,
                 delivery.run_id, number)
    elif number > len(delays):
        update.update(state=WebhookDelivery.State.FAILED, next_attempt_at=None)
        log.warning("Webhook delivery %s (run %s) gave up after %s attempts: %s", delivery.pk, delivery.run_id,
                    number, error)
    else:
        countdown = delays[number - 1]
        update.update(next_attempt_at=now + timedelta(seconds=countdown))
        log.info("Webhook delivery %s (run %s) attempt %s failed (%s); next in %s s.", delivery.pk,
                 delivery.run_id, number, error, countdown)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**update)
    return countdown
