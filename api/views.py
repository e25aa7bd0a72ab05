"""The REST API: JSON views over projects, scenarios, locustfile versions and runs.

Every view goes through api.auth.api_view (token or session authentication, allowed methods,
JSON errors) and fetches its objects with the same access helpers as the pages: other
projects' objects answer 404, a role too low answers 403. Input is validated by the UI's own
forms, after unknown fields and wrongly typed JSON values are refused.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from api import payloads, schema
from api.auth import BadRequest, api_view, check_types, error, form_errors, reject_unknown, request_data
from audit.log import record
from runs import labels as run_labels
from runs import reports, services
from runs.access import get_run_for_user
from runs.forms import RunForm, ThresholdForm
from runs.models import Run
from scenarios import bundles
from scenarios import secrets as project_secrets
from scenarios.access import get_project_for_user, get_scenario_for_user
from scenarios.forms import NewScenarioForm, ProjectForm, UploadVersionForm
from scenarios.models import Membership, Project, Role, Scenario
from scenarios.services import add_version, create_project, create_scenario, same_as_current
from sharing.quotas import QuotaRefused
from targets.policy import TargetNotAllowed
from workers import envvars

PROJECT_FIELDS = {"name": "string", "slug": "string", "description": "string"}
SCENARIO_FIELDS = {"name": "string", "description": "string", "default_host": "string", "default_users": "integer",
                   "default_spawn_rate": "number", "default_duration": "duration", "default_slots": "integer"}
RUN_FIELDS = {"users": "integer", "spawn_rate": "number", "duration": "duration", "host": "string",
              "slots": "integer", "options": "object", "env": "object", "labels": "object"}
ENVIRONMENT_FIELDS = {"variables": "object", "secrets": "array"}
SECRET_FIELDS = {"name": "string", "value": "string"}
CRITERION_FIELDS = {"metric": "string", "endpoint": "string", "value": "number", "window_seconds": "integer",
                    "window": "string", "baseline_runs": "integer", "abort_on_fail": "boolean",
                    "grace_seconds": "integer", "enabled": "boolean"}
# A multipart body a little over the largest allowed file (form fields, boundaries), as on the upload pages.
UPLOAD_REQUEST_LIMIT = bundles.MAX_ZIP_BYTES + 1024 * 1024


def _created(data: dict) -> JsonResponse:
    return JsonResponse(data, status=201)


# -- projects ------------------------------------------------------------------------------------

@api_view("GET", "POST")
def projects(request):
    """GET: the projects the user is a member of, with their role. POST: create one (creator is maintainer)."""
    if request.method == "POST":
        data, files = request_data(request)
        reject_unknown(data, PROJECT_FIELDS, files)
        check_types(data, PROJECT_FIELDS)
        form = ProjectForm({**data})
        if not form.is_valid():
            raise BadRequest(form_errors(form))
        project = create_project(request.user, **form.cleaned_data)
        return _created(payloads.project(request, project, Role.MAINTAINER))
    roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
    rows = Project.objects.for_user(request.user).order_by("name")
    return JsonResponse({"projects": [payloads.project(request, p, roles[p.pk]) for p in rows]})


# -- scenarios and locustfile versions -----------------------------------------------------------

def _too_large(request) -> JsonResponse | None:
    """Refuse a huge upload from its Content-Length, before Django parses the body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length > UPLOAD_REQUEST_LIMIT:
        return error(413, f"The upload is {length / 1048576:.1f} MB. Swarmdeck takes a .py locustfile of up to "
                          f"{bundles.MAX_PY_BYTES // 1048576} MB or a .zip bundle of up to "
                          f"{bundles.MAX_ZIP_BYTES // 1048576} MB.")
    return None


def _upload_errors(form) -> BadRequest:
    """The form's errors, with the locustfile's own error (file, line, column) instead of "details above"."""
    errors = form_errors(form)
    if form.locustfile_error is None:
        return BadRequest(errors)
    errors["locustfile"] = [str(form.locustfile_error)]
    return BadRequest(errors, locustfile_error=form.locustfile_error.as_dict())


@api_view("GET", "POST")
def scenarios(request, slug):
    """GET: the project's scenarios. POST (maintainer, multipart): a new scenario with its first locustfile."""
    if request.method == "GET":
        project, _ = get_project_for_user(request, slug)
        rows = project.scenarios.select_related("project")
        return JsonResponse({"scenarios": [payloads.scenario(request, s) for s in rows]})
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    too_large = _too_large(request)
    if too_large:
        return too_large
    data, files = request_data(request, files=True)
    reject_unknown(data, SCENARIO_FIELDS, files, allowed_files={"locustfile"})
    defaults = {name: Scenario._meta.get_field(name).get_default() for name in payloads.DEFAULT_FIELDS}
    form = NewScenarioForm({**defaults, **data}, files, project=project)
    if not form.is_valid():
        raise _upload_errors(form)
    fields = {name: value for name, value in form.cleaned_data.items() if name != "locustfile"}
    scenario = create_scenario(project, fields=fields, bundle=form.bundle,
                               filename=form.cleaned_data["locustfile"].name, findings=form.findings,
                               user=request.user)
    return _created(payloads.scenario(request, scenario))


@api_view("GET")
def scenario_detail(request, scenario_id):
    """One scenario with its defaults and current locustfile version."""
    scenario, _ = get_scenario_for_user(request, scenario_id)
    return JsonResponse(payloads.scenario(request, scenario))


@api_view("POST")
def locustfile(request, scenario_id):
    """A new locustfile version (maintainer, multipart: locustfile, comment); the same file twice is refused."""
    scenario, _ = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    too_large = _too_large(request)
    if too_large:
        return too_large
    data, files = request_data(request, files=True)
    reject_unknown(data, {"comment"}, files, allowed_files={"locustfile"})
    check_types(data, {"comment": "string"})
    form = UploadVersionForm(data, files)
    if not form.is_valid():
        raise _upload_errors(form)
    duplicate = same_as_current(scenario, form.bundle)
    if duplicate:
        raise BadRequest({"locustfile": [duplicate]})
    version = add_version(scenario, bundle=form.bundle, filename=form.cleaned_data["locustfile"].name,
                          findings=form.findings, user=request.user, comment=form.cleaned_data["comment"])
    return _created(payloads.version(request, version))


@api_view("GET", "PUT")
def scenario_environment(request, scenario_id):
    """GET: the scenario's environment variables and the secrets it receives (names). PUT (maintainer): set both."""
    if request.method == "GET":
        scenario, _ = get_scenario_for_user(request, scenario_id)
        return JsonResponse(payloads.environment(scenario))
    scenario, _ = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    data, files = request_data(request)
    reject_unknown(data, ENVIRONMENT_FIELDS, files)
    check_types(data, ENVIRONMENT_FIELDS)
    try:
        project_secrets.set_environment(scenario, data.get("variables"), data.get("secrets"))
    except project_secrets.EnvironmentRefused as refused:
        raise BadRequest(refused.errors) from None
    record("scenario.edited", actor=request.user, project=scenario.project, subject=f"scenario {scenario.name}",
           details={"scenario": scenario.pk, "changed": ["env_vars", "secret_names"]})
    return JsonResponse(payloads.environment(scenario))


@api_view("GET", "POST")
def scenario_criteria(request, scenario_id):
    """GET: the scenario's pass/fail criteria. POST (maintainer): add one, checked by the criteria page's form."""
    if request.method == "GET":
        scenario, _ = get_scenario_for_user(request, scenario_id)
        return JsonResponse({"criteria": [payloads.criterion(row) for row in scenario.thresholds.all()]})
    scenario, _ = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    data, files = request_data(request)
    reject_unknown(data, CRITERION_FIELDS, files)
    check_types(data, CRITERION_FIELDS)
    form = ThresholdForm({"enabled": True, **data})
    if not form.is_valid():
        raise BadRequest(form_errors(form))
    criterion = form.save(commit=False)
    criterion.scenario = scenario
    criterion.save()
    return _created(payloads.criterion(criterion))


# -- project secrets -----------------------------------------------------------------------------

@api_view("GET", "POST")
def project_secrets_list(request, slug):
    """GET: the project's secrets, names and dates only. POST (maintainer): create or replace one {name, value}."""
    if request.method == "GET":
        project, _ = get_project_for_user(request, slug)
        rows = project.secrets.select_related("updated_by")
        return JsonResponse({"secrets": [payloads.secret(row) for row in rows]})
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    data, files = request_data(request)
    reject_unknown(data, SECRET_FIELDS, files)
    check_types(data, SECRET_FIELDS)
    name, value = data.get("name"), data.get("value")
    errors = {field: ["This field is required."] for field in ("name", "value") if not data.get(field)}
    if errors:
        raise BadRequest(errors)
    problem = envvars.name_problem(name)
    if problem:
        raise BadRequest({"name": [problem]})
    existed = project.secrets.filter(name=name).exists()
    try:
        row = project_secrets.set_secret(project, name, value, request.user)
    except ValueError as problem:
        raise BadRequest({"value": [str(problem)]}) from None
    return JsonResponse(payloads.secret(row), status=200 if existed else 201)


@api_view("PUT", "DELETE")
def project_secret(request, slug, name):
    """PUT (maintainer): replace the secret's value {value}. DELETE (maintainer): delete it."""
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    if request.method == "DELETE":
        if not project_secrets.delete_secret(project, name, request.user):
            return error(404, f"{project.name} has no secret named {name}.")
        return HttpResponse(status=204)
    data, files = request_data(request)
    reject_unknown(data, {"value"}, files)
    check_types(data, {"value": "string"})
    if not data.get("value"):
        raise BadRequest({"value": ["This field is required."]})
    try:
        row = project_secrets.set_secret(project, name, data["value"], request.user)
    except ValueError as problem:
        raise BadRequest({"value": [str(problem)]}) from None
    return JsonResponse(payloads.secret(row))


# -- runs ----------------------------------------------------------------------------------------

def _trigger_detail(request) -> dict:
    token = request.api_token
    return {"token": token.pk, "name": token.name} if token else {}


@api_view("GET", "POST")
def scenario_runs(request, scenario_id):
    """GET: the scenario's last 50 runs. POST (runner): start a run, the scenario's defaults with overrides."""
    if request.method == "GET":
        scenario, _ = get_scenario_for_user(request, scenario_id)
        rows = scenario.runs.defer("stats_blob", "totals")[:50]
        return JsonResponse({"runs": [payloads.run_brief(request, run) for run in rows]})
    scenario, _ = get_scenario_for_user(request, scenario_id, Role.RUNNER)
    data, files = request_data(request)
    reject_unknown(data, RUN_FIELDS, files)
    check_types(data, RUN_FIELDS)
    version = scenario.current_version
    if version is None:
        raise BadRequest({"__all__": [f"{scenario.name} has no locustfile yet: upload one first."]})
    fields = {k: v for k, v in data.items() if v is not None and k not in ("options", "env", "labels")}
    form = RunForm({**RunForm.defaults(scenario), **fields}, scenario=scenario, version=version, with_options=False)
    errors = {} if form.is_valid() else form_errors(form)
    # The locustfile's own options, hidden ones (include_in_web_ui=False) included, as `locust --region eu`.
    given = data.get("options")
    if isinstance(given, str):  # form data: the object as JSON text
        try:
            given = json.loads(given) if given.strip() else None
        except ValueError:
            pass
    options: dict = {}
    try:
        options = services.clean_options(version, given)
    except services.OptionsRefused as problem:
        errors["options"] = list(problem.errors.values())
    labels: dict = {}
    try:
        labels = run_labels.clean(_labels_object(data.get("labels"), request.content_type != "application/json"))
    except run_labels.LabelError as problem:
        errors["labels"] = problem.messages
    if errors:
        raise BadRequest(errors)
    try:
        run = services.start_run(scenario, user=request.user,
                                 params={**form.params(), "options": options, "env": _env_overrides(data.get("env"))},
                                 trigger=Run.Trigger.API, trigger_detail=_trigger_detail(request), labels=labels)
    except services.BrokerUnavailable as problem:
        return error(503, str(problem), **{"Retry-After": "5"})
    except services.EnvRefused as problem:
        raise BadRequest({"env": [str(problem)]}) from None
    except services.LabelsRefused as problem:
        raise BadRequest({"labels": problem.errors}) from None
    except TargetNotAllowed as problem:
        raise BadRequest({"host": [str(problem)]}) from None
    except QuotaRefused as problem:  # the cap named, on the field it concerns
        raise BadRequest(problem.errors) from None
    except services.RunError as problem:
        raise BadRequest({"__all__": [str(problem)]}) from None
    return _created(payloads.run_brief(request, run))


def _labels_object(given, form_data: bool):
    """`labels` of a run: an object of strings; in form data, its JSON text or key=value lines."""
    if not isinstance(given, str):
        return given
    if not form_data:
        raise run_labels.LabelError([f"Expected an object of strings, e.g. {{\"env\": \"staging\"}}, "
                                     f"got {json.dumps(given)}."])
    if not given.strip():
        return None
    try:
        return json.loads(given)
    except ValueError:
        return run_labels.parse_text(given)  # LabelError names what is not key=value


def _env_overrides(given):
    """`env` of a run: an object of variables, or its JSON text in form data."""
    if isinstance(given, str):
        try:
            given = json.loads(given) if given.strip() else None
        except ValueError:
            raise BadRequest({"env": ['Give env as an object of variables, e.g. {"API_HOST": "https://x"}.']}) from None
    return given or None


@api_view("GET")
def run_detail(request, run_id):
    """Status, reason, verdict, totals, endpoints and slots of a run."""
    run, _ = get_run_for_user(request, run_id)
    return JsonResponse(payloads.run(request, run))


@api_view("POST")
def run_stop(request, run_id):
    """Stop a running run (or cancel one that has not started); 409 when it has already ended."""
    run, _ = get_run_for_user(request, run_id, Role.RUNNER)
    stopped = services.request_stop(run, request.user)
    run.refresh_from_db()
    if not stopped and run.status in Run.TERMINAL:
        return error(409, f"Run #{run.pk} is {run.get_status_display().lower()}: there is nothing to stop.")
    return JsonResponse({**payloads.run_brief(request, run), "stopped": stopped}, status=202)


# -- report downloads ----------------------------------------------------------------------------

def _attachment(content: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content.encode("utf-8"), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"  # a running run's figures change every second
    return response


@api_view("GET")
def run_report_json(request, run_id):
    """The run's full JSON report (runs/reports.py documents its keys)."""
    run, _ = get_run_for_user(request, run_id)
    document = json.dumps(reports.report_data(run), cls=DjangoJSONEncoder, indent=2)
    return _attachment(document, reports.json_filename(run), "application/json")


@api_view("GET")
def run_csv(request, run_id, kind):
    """One of Locust's --csv files: stats, stats_history, failures or exceptions."""
    run, _ = get_run_for_user(request, run_id)
    return _attachment(reports.CSV_FILES[kind](run), reports.csv_filename(run, kind), "text/csv; charset=utf-8")


@api_view("GET")
def run_report_html(request, run_id):
    """The self-contained HTML report that opens offline."""
    run, _ = get_run_for_user(request, run_id)
    return _attachment(reports.html_report(run), reports.html_filename(run), "text/html; charset=utf-8")


# -- schema, docs, unknown paths -----------------------------------------------------------------

@api_view("GET", public=True)
def openapi(request):
    """The OpenAPI 3 document describing every endpoint above; public, like any API's description."""
    return JsonResponse(schema.document(request.build_absolute_uri("/").rstrip("/")),
                        json_dumps_params={"indent": 2})


@api_view("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
def not_found(request, rest):
    """Any other /api/ path: a JSON 404 rather than an HTML page."""
    hint = " (did you leave out the trailing slash?)" if _resolves(f"/api/{rest}/") else ""
    return error(404, f"There is no API endpoint at /api/{rest}{hint}. See /api/schema/.")


def _resolves(path: str) -> bool:
    try:
        return resolve(path).url_name != "api-not-found"
    except Resolver404:
        return False
