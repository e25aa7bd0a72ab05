"""The JSON shapes the API answers with, one function per object."""

from django.urls import reverse

from runs import labels as run_labels
from runs import reporting, reports
from runs.models import Run, Threshold
from scenarios import options as locust_options
from scenarios.models import LocustfileVersion, Project, ProjectSecret, Scenario
from scenarios.secrets import masker_for_run

DEFAULT_FIELDS = ("default_host", "default_users", "default_spawn_rate", "default_duration", "default_slots")


def _iso(value):
    return value.isoformat() if value else None


def project(request, project: Project, role: str) -> dict:
    return {
        "slug": project.slug, "name": project.name, "description": project.description, "role": role,
        "created_at": _iso(project.created_at),
        "url": request.build_absolute_uri(project.get_absolute_url()),
        "scenarios": request.build_absolute_uri(reverse("api-scenarios", args=[project.slug])),
    }


def version(request, version: LocustfileVersion | None) -> dict | None:
    if version is None:
        return None
    findings = version.findings or {}
    return {
        "number": version.number, "kind": version.kind, "filename": version.filename, "sha256": version.sha256,
        "size": version.size, "comment": version.comment,
        "uploaded_by": version.uploaded_by.username if version.uploaded_by else None,
        "uploaded_at": _iso(version.uploaded_at),
        "user_classes": [uc.get("name") for uc in findings.get("user_classes", []) if not uc.get("abstract")],
        "tags": findings.get("all_tags", []),
        "shape": bool(findings.get("shape")),
        "warnings": findings.get("warnings", []),
        "options": [_option(option) for option in locust_options.shown(findings)],
        "url": request.build_absolute_uri(version.get_absolute_url()),
    }


def _option(option: dict) -> dict:
    """A custom option as a client needs it to set one (`options` when starting a run)."""
    return {key: option.get(key) for key in ("name", "dest", "type", "default", "default_known", "default_text",
                                             "choices", "help", "required", "include_in_web_ui", "is_secret")}


def scenario(request, scenario: Scenario) -> dict:
    return {
        "id": scenario.pk, "name": scenario.name, "description": scenario.description,
        "project": scenario.project.slug,
        **{name: getattr(scenario, name) for name in DEFAULT_FIELDS},
        "environment": environment(scenario),
        "current_version": version(request, scenario.versions.select_related("uploaded_by").first()),
        "created_at": _iso(scenario.created_at), "updated_at": _iso(scenario.updated_at),
        "url": request.build_absolute_uri(scenario.get_absolute_url()),
        "runs": request.build_absolute_uri(reverse("api-scenario-runs", args=[scenario.pk])),
    }


def environment(scenario: Scenario) -> dict:
    """What a scenario's runs get as environment variables: its variables, and the project secrets it receives
    (names only: a secret's value is never shown)."""
    return {"variables": dict(scenario.env_vars or {}), "secrets": list(scenario.secret_names or [])}


def secret(secret: ProjectSecret) -> dict:
    """A project secret as the API shows it: its name and dates, never its value."""
    return {"name": secret.name, "created_at": _iso(secret.created_at), "updated_at": _iso(secret.updated_at),
            "updated_by": secret.updated_by.username if secret.updated_by else None}


def criterion(threshold: Threshold) -> dict:
    """A pass/fail criterion as set on its scenario (window_seconds 0: the whole run)."""
    return {"id": threshold.pk, "criterion": str(threshold),
            **{name: getattr(threshold, name) for name in (
                "metric", "endpoint", "value", "window_seconds", "window", "baseline_runs", "abort_on_fail",
                "grace_seconds", "enabled")}}


def verdict(run: Run):
    """The thresholds' verdict ("pass"/"fail") once evaluated; null before that or without thresholds."""
    return getattr(run, "verdict", None) or None


def run_brief(request, run: Run) -> dict:
    """What starting a run answers, and one row of a scenario's run list."""
    return {
        "id": run.pk, "status": run.status, "verdict": verdict(run),
        "url": request.build_absolute_uri(run.get_absolute_url()),
        "api_url": request.build_absolute_uri(reverse("api-run", args=[run.pk])),
        "created_at": _iso(run.created_at), "trigger": run.trigger, "labels": run_labels.ordered(run.labels),
    }


def run(request, run: Run) -> dict:
    """runs.reporting.summary (what `runscenario --json` writes), plus what a pipeline needs around it."""
    summary = reporting.summary(run)
    for key in ("run", "status", "reason", "ended_by", "verdict", "labels"):
        summary.pop(key, None)
    criteria = summary.pop("criteria", None)
    downloads = {name: request.build_absolute_uri(reverse(url_name, args=[run.pk])) for name, url_name in (
        ("json", "api-run-report-json"), ("stats_csv", "api-run-stats-csv"),
        ("stats_history_csv", "api-run-stats-history-csv"), ("failures_csv", "api-run-failures-csv"),
        ("exceptions_csv", "api-run-exceptions-csv"), ("html", "api-run-report-html"))}
    return masker_for_run(run).data({
        "id": run.pk,
        "status": run.status,
        "terminal": run.status in Run.TERMINAL,
        "reason": run.reason,
        "ended_by": run.ended_by,
        "verdict": verdict(run),
        "criteria": criteria if criteria is not None else getattr(run, "verdict_details", None) or [],
        "degraded": run.degraded,
        "project": run.project.slug,
        "scenario": {"id": run.scenario_id, "name": run.scenario.name},
        "locustfile_version": run.version.number,
        "params": locust_options.masked_params(run.params),
        "labels": run_labels.ordered(run.labels),
        "trigger": run.trigger,
        "created_by": run.created_by.username if run.created_by else None,
        "created_at": _iso(run.created_at), "started_at": _iso(run.started_at), "ended_at": _iso(run.ended_at),
        "elapsed_s": run.elapsed_seconds(),
        "summary": reports.summary_figures(run),
        **summary,  # totals, endpoints, slots
        "warnings": run.warnings or [],
        "url": request.build_absolute_uri(run.get_absolute_url()),
        "reports": downloads,
    })
