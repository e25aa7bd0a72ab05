"""Schedule and webhook pages. Objects are fetched for this user: other projects' answer 404,
members below maintainer get 403 on changes."""

from django.contrib import messages
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit.log import record
from automation import schedules as schedule_service
from automation import webhooks as webhook_service
from automation.forms import ScheduleForm, WebhookForm
from automation.models import Schedule, Webhook, WebhookDelivery, new_secret
from scenarios.access import get_project_for_user, get_scenario_for_user
from scenarios.models import Role


def _get_schedule_for_user(request, schedule_id, role=Role.VIEWER):
    schedule = (Schedule.objects.for_user(request.user).select_related("scenario__project", "periodic_task")
                .filter(pk=schedule_id).first())
    if schedule is None:
        raise Http404("No such schedule.")
    _, membership = get_scenario_for_user(request, schedule.scenario_id, role)
    return schedule, membership


def _get_webhook_for_user(request, webhook_id, role=Role.VIEWER):
    webhook = (Webhook.objects.select_related("project").filter(pk=webhook_id, project__memberships__user=request.user)
               .first() if request.user.is_authenticated else None)
    if webhook is None:
        raise Http404("No such webhook.")
    _, membership = get_project_for_user(request, webhook.project.slug, role)
    return webhook, membership


def _record_schedule(action: str, request, schedule: Schedule, **details) -> None:
    record(action, actor=request.user, project=schedule.scenario.project, subject=f"schedule {schedule.name}",
           details={"schedule": schedule.pk, "scenario": schedule.scenario_id, **details})


def _record_webhook(action: str, request, webhook: Webhook, **details) -> None:
    """Scheme and host only (Webhook.short_url): a webhook URL's path can itself be a secret, as its key is."""
    record(action, actor=request.user, project=webhook.project, subject=f"webhook {webhook.short_url}",
           details={"webhook": webhook.pk, **details})


def schedule_create(request, scenario_id):
    scenario, membership = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    form = ScheduleForm(request.POST or None, scenario=scenario, initial={"preset": Schedule.Preset.NIGHTLY})
    if request.method == "POST" and form.is_valid():
        form.instance.created_by = request.user
        schedule = schedule_service.save_schedule(form.save(commit=False))
        _record_schedule("schedule.created", request, schedule, timing=schedule.timing, enabled=schedule.enabled)
        messages.success(request, f"Schedule {schedule.name} saved.")
        return redirect(f"{scenario.get_absolute_url()}#schedules")
    return render(request, "automation/schedule_form.html",
                  {"form": form, "scenario": scenario, "project": scenario.project, "membership": membership})


def schedule_detail(request, schedule_id):
    schedule, membership = _get_schedule_for_user(request, schedule_id)
    runs = (schedule_service.runs_of(schedule).with_peak_users()
            .select_related("created_by", "scenario", "stop_requested_by").defer("stats_blob", "totals"))
    return render(request, "automation/schedule_detail.html", {
        "schedule": schedule, "scenario": schedule.scenario, "project": schedule.scenario.project,
        "membership": membership, "can_edit": membership.allows(Role.MAINTAINER),
        "next_times": schedule_service.next_fire_times(schedule), "runs": runs[:50], "skips": schedule.skips.all()[:50],
    })


def schedule_edit(request, schedule_id):
    schedule, membership = _get_schedule_for_user(request, schedule_id, Role.MAINTAINER)
    scenario = schedule.scenario
    form = ScheduleForm(request.POST or None, instance=schedule, scenario=scenario)
    if request.method == "POST" and form.is_valid():
        schedule_service.save_schedule(form.save(commit=False))
        _record_schedule("schedule.edited", request, schedule, changed=sorted(form.changed_data))
        messages.success(request, f"Schedule {schedule.name} saved.")
        return redirect(schedule)
    return render(request, "automation/schedule_form.html", {
        "form": form, "schedule": schedule, "scenario": scenario, "project": scenario.project, "membership": membership,
    })


@require_POST
def schedule_toggle(request, schedule_id):
    schedule, _ = _get_schedule_for_user(request, schedule_id, Role.MAINTAINER)
    schedule.enabled = not schedule.enabled
    schedule_service.save_schedule(schedule)
    _record_schedule("schedule.enabled" if schedule.enabled else "schedule.disabled", request, schedule)
    messages.success(request, f"Schedule {schedule.name} {'enabled' if schedule.enabled else 'disabled'}.")
    return redirect(request.POST.get("next") == "scenario" and f"{schedule.scenario.get_absolute_url()}#schedules"
                    or schedule.get_absolute_url())


def schedule_delete(request, schedule_id):
    schedule, membership = _get_schedule_for_user(request, schedule_id, Role.MAINTAINER)
    scenario = schedule.scenario
    if request.method == "POST":
        schedule_id = schedule.pk
        schedule.delete()  # its PeriodicTask goes with it (automation.receivers)
        record("schedule.deleted", actor=request.user, project=scenario.project, subject=f"schedule {schedule.name}",
               details={"schedule": schedule_id, "scenario": scenario.pk})
        messages.success(request, f"Schedule {schedule.name} deleted.")
        return redirect(f"{scenario.get_absolute_url()}#schedules")
    return render(request, "automation/schedule_delete.html", {
        "schedule": schedule, "scenario": scenario, "project": scenario.project, "membership": membership,
    })


def webhook_list(request, slug):
    project, membership = get_project_for_user(request, slug)
    form = None
    if membership.allows(Role.MAINTAINER):
        form = WebhookForm(request.POST or None)
    if request.method == "POST":
        project, membership = get_project_for_user(request, slug, Role.MAINTAINER)
        if form.is_valid():
            form.instance.project = project
            form.instance.created_by = request.user
            webhook = form.save()
            _record_webhook("webhook.created", request, webhook, events=webhook.events, enabled=webhook.enabled)
            messages.success(request, "Webhook added. Verify its signature with the secret shown below.")
            return redirect(webhook)
    webhooks = project.webhooks.all()
    deliveries = (WebhookDelivery.objects.filter(webhook__project=project).select_related("webhook")
                  .prefetch_related("attempt_log")[:50])
    return render(request, "automation/webhook_list.html", {
        "project": project, "membership": membership, "webhooks": webhooks, "deliveries": deliveries, "form": form,
        "can_edit": membership.allows(Role.MAINTAINER),
        "backoff": [f"{delay:g} s" for delay in webhook_service.backoff()],
    })


def webhook_detail(request, webhook_id):
    webhook, membership = _get_webhook_for_user(request, webhook_id)
    deliveries = webhook.deliveries.prefetch_related("attempt_log")[:100]
    return render(request, "automation/webhook_detail.html", {
        "webhook": webhook, "project": webhook.project, "membership": membership, "deliveries": deliveries,
        "can_edit": membership.allows(Role.MAINTAINER),
    })


def webhook_edit(request, webhook_id):
    webhook, membership = _get_webhook_for_user(request, webhook_id, Role.MAINTAINER)
    form = WebhookForm(request.POST or None, instance=webhook)
    if request.method == "POST" and form.is_valid():
        form.save()
        _record_webhook("webhook.edited", request, webhook, changed=sorted(form.changed_data))
        messages.success(request, "Webhook saved.")
        return redirect(webhook)
    return render(request, "automation/webhook_form.html",
                  {"form": form, "webhook": webhook, "project": webhook.project, "membership": membership})


@require_POST
def webhook_ping(request, webhook_id):
    """A signed test event, sent now, so a maintainer can check the receiver and its signature check."""
    webhook, _ = _get_webhook_for_user(request, webhook_id, Role.MAINTAINER)
    status, error, seconds = webhook_service.ping(webhook)
    if not error:
        messages.success(request, f"Ping answered {status} in {seconds * 1000:.0f} ms.")
    else:
        messages.error(request, f"Ping failed: {error}" + ("" if error.endswith(".") else "."))
    return redirect(webhook)


@require_POST
def webhook_new_secret(request, webhook_id):
    webhook, _ = _get_webhook_for_user(request, webhook_id, Role.MAINTAINER)
    webhook.secret = new_secret()
    webhook.save(update_fields=["secret"])
    _record_webhook("webhook.secret_renewed", request, webhook)
    messages.success(request, "New secret generated: update your receiver. Pending deliveries are signed with it.")
    return redirect(webhook)


def webhook_delete(request, webhook_id):
    webhook, membership = _get_webhook_for_user(request, webhook_id, Role.MAINTAINER)
    project = webhook.project
    if request.method == "POST":
        with transaction.atomic():  # the entry names the webhook, so it is written first, with the deletion
            _record_webhook("webhook.deleted", request, webhook)
            webhook.delete()
        messages.success(request, "Webhook deleted.")
        return redirect("automation-webhooks", slug=project.slug)
    return render(request, "automation/webhook_delete.html",
                  {"webhook": webhook, "project": project, "membership": membership})
