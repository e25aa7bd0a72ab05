"""The REST API: JSON operations over projects, scenarios, locustfile versions and runs.

Every operation is registered on the django-ninja router below (api/app.py mounts it): token or
session authentication, typed request bodies (api/schemas.py), declared answers. Objects are
fetched with the same access helpers as the pages: other projects' objects answer 404, a role too
low answers 403. The UI's own forms then apply the domain rules, so both refuse the same input.
"""

import json
import os
from typing import Annotated, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from ninja import Path, Router
from ninja.responses import Status

from api import payloads, schemas
from api.app import JsonBody, MultipartBody
from api.auth import ApiError, BadRequest, form_errors
from api.schemas import Error, ValidationErrors
from audit.log import record
from runs import labels as run_labels
from runs import reports, services
from runs.access import get_run_for_user
from runs.forms import RunForm, ThresholdForm
from runs.models import Run
from scenarios import secrets as project_secrets
from scenarios.access import get_project_for_user, get_scenario_for_user
from scenarios.forms import NewScenarioForm, ProjectForm, UploadVersionForm
from scenarios.models import Membership, Project, Role, Scenario
from scenarios.services import add_version, create_project, create_scenario, same_as_current
from sharing.quotas import QuotaRefused
from targets.policy import TargetNotAllowed
from workers import envvars

router = Router()
MAX_ID = 2**63 - 1  # a bigint primary key: a larger id is no object's
Slug = Annotated[str, Path(description="The project's slug, as in its page's URL (/p/<slug>/).", example="shop",
                           pattern=r"^[-a-zA-Z0-9_]+$", max_length=60)]
ScenarioId = Annotated[int, Path(description="The scenario's id, as in its page's URL (/scenarios/<id>/).",
                                 example=1, ge=1, le=MAX_ID)]
RunId = Annotated[int, Path(description="The run's id, as in its page's URL (/runs/<id>/).", example=1, ge=1,
                            le=MAX_ID)]
SecretName = Annotated[str, Path(description="The secret's name, as an environment variable name.",
                                 example="API_TOKEN", pattern=envvars.NAME_RE.pattern, max_length=envvars.MAX_NAME)]


def answers(success: dict[int, Any], *errors: int) -> dict[int, Any]:
    """The declared answers of an operation: its successes, then its errors (400 field errors, else Error)."""
    return {**success, **{status: ValidationErrors if status == 400 else Error for status in sorted({401, *errors})}}


# -- projects ------------------------------------------------------------------------------------

@router.get("/projects/", url_name="api-projects", operation_id="list_projects", tags=["projects"],
            summary="List your projects", response=answers({200: schemas.Projects}))
def list_projects(request):
    """The projects you are a member of, with your role in each."""
    roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
    rows = Project.objects.for_user(request.user).order_by("name")
    return {"projects": [payloads.project(request, p, roles[p.pk]) for p in rows]}


@router.post("/projects/", url_name="api-projects", operation_id="create_project", tags=["projects"],
             summary="Create a project", response=answers({201: schemas.Project}, 400))
def create_project_(request, payload: Annotated[schemas.ProjectInput, JsonBody()]):
    """You become its maintainer. The slug must not be taken."""
    form = ProjectForm(_given(payload))
    if not form.is_valid():
        raise BadRequest(form_errors(form))
    project = create_project(request.user, **form.cleaned_data)
    return Status(201, payloads.project(request, project, Role.MAINTAINER))


def _given(payload) -> dict:
    """The fields the client sent (null: as if left out)."""
    return {name: value for name, value in payload.model_dump(exclude_unset=True).items() if value is not None}


# -- scenarios and locustfile versions -----------------------------------------------------------

def _named(upload):
    """An upload named without an extension (`curl -F locustfile=@-`, a client that names a part after its field)
    is taken as a .zip bundle when it starts as one, else as a .py locustfile."""
    if os.path.splitext(upload.name or "")[1]:
        return upload
    start = upload.read(4)
    upload.seek(0)
    upload.name = (os.path.basename(upload.name or "") or "locustfile") + (".zip" if start == b"PK\x03\x04" else ".py")
    return upload


def _upload_errors(form) -> BadRequest:
    """The form's errors, with the locustfile's own error (file, line, column) instead of "details above"."""
    errors = form_errors(form)
    if form.locustfile_error is None:
        return BadRequest(errors)
    errors["locustfile"] = [str(form.locustfile_error)]
    return BadRequest(errors, locustfile_error=form.locustfile_error.as_dict())


@router.get("/projects/{slug}/scenarios/", url_name="api-scenarios", operation_id="list_scenarios",
            tags=["scenarios"], summary="List a project's scenarios", response=answers({200: schemas.Scenarios}, 404))
def list_scenarios(request, slug: Slug):
    project, _ = get_project_for_user(request, slug)
    rows = project.scenarios.select_related("project")
    return {"scenarios": [payloads.scenario(request, s) for s in rows]}


@router.post("/projects/{slug}/scenarios/", url_name="api-scenarios", operation_id="create_scenario",
             tags=["scenarios"], summary="Create a scenario with its locustfile",
             response=answers({201: schemas.Scenario}, 400, 403, 404, 413))
def create_scenario_(request, slug: Slug, payload: Annotated[schemas.ScenarioInput, MultipartBody()]):
    """Maintainers. Validated as on the New scenario page: a broken locustfile answers 400 naming the file, line and
    column, and nothing is stored. Defaults left out take the usual values."""
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    defaults = {name: Scenario._meta.get_field(name).get_default() for name in payloads.DEFAULT_FIELDS}
    given = _given(payload)
    upload = _named(given.pop("locustfile"))
    form = NewScenarioForm({**defaults, **given}, {"locustfile": upload}, project=project)
    if not form.is_valid():
        raise _upload_errors(form)
    fields = {name: value for name, value in form.cleaned_data.items() if name != "locustfile"}
    scenario = create_scenario(project, fields=fields, bundle=form.bundle,
                               filename=form.cleaned_data["locustfile"].name, findings=form.findings,
                               user=request.user)
    return Status(201, payloads.scenario(request, scenario))


@router.get("/scenarios/{scenario_id}/", url_name="api-scenario", operation_id="get_scenario", tags=["scenarios"],
            summary="Get a scenario", response=answers({200: schemas.Scenario}, 404))
def get_scenario(request, scenario_id: ScenarioId):
    """One scenario with its defaults and current locustfile version."""
    scenario, _ = get_scenario_for_user(request, scenario_id)
    return payloads.scenario(request, scenario)


@router.post("/scenarios/{scenario_id}/locustfile/", url_name="api-scenario-locustfile",
             operation_id="upload_locustfile", tags=["scenarios"], summary="Upload a new locustfile version",
             response=answers({201: schemas.Version}, 400, 403, 404, 413))
def upload_locustfile(request, scenario_id: ScenarioId, payload: Annotated[schemas.VersionInput, MultipartBody()]):
    """Maintainers. Validated as on the upload page; the same file as the current version is refused."""
    scenario, _ = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    given = _given(payload)
    form = UploadVersionForm(given, {"locustfile": _named(given.pop("locustfile"))})
    if not form.is_valid():
        raise _upload_errors(form)
    duplicate = same_as_current(scenario, form.bundle)
    if duplicate:
        raise BadRequest({"locustfile": [duplicate]})
    version = add_version(scenario, bundle=form.bundle, filename=form.cleaned_data["locustfile"].name,
                          findings=form.findings, user=request.user, comment=form.cleaned_data["comment"])
    return Status(201, payloads.version(request, version))


@router.get("/scenarios/{scenario_id}/environment/", url_name="api-scenario-environment",
            operation_id="get_environment", tags=["scenarios"],
            summary="Get a scenario's environment variables and secrets", response=answers({200: schemas.Environment},
                                                                                          404))
def get_environment(request, scenario_id: ScenarioId):
    """Variables with their values, secrets by name."""
    scenario, _ = get_scenario_for_user(request, scenario_id)
    return payloads.environment(scenario)


@router.put("/scenarios/{scenario_id}/environment/", url_name="api-scenario-environment",
            operation_id="set_environment", tags=["scenarios"],
            summary="Set a scenario's environment variables and secrets",
            response=answers({200: schemas.Environment}, 400, 403, 404),
            openapi_extra={"requestBody": {"required": False}})
def set_environment(request, scenario_id: ScenarioId, payload: Annotated[schemas.EnvironmentInput, JsonBody()]):
    """Maintainers. Replaces both: variables left out are removed. The secrets must be the project's."""
    scenario, _ = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    given = _given(payload)
    try:
        project_secrets.set_environment(scenario, given.get("variables"), given.get("secrets"))
    except project_secrets.EnvironmentRefused as refused:
        raise BadRequest(refused.errors) from None
    record("scenario.edited", actor=request.user, project=scenario.project, subject=f"scenario {scenario.name}",
           details={"scenario": scenario.pk, "changed": ["env_vars", "secret_names"]})
    return payloads.environment(scenario)


@router.get("/scenarios/{scenario_id}/criteria/", url_name="api-scenario-criteria", operation_id="list_criteria",
            tags=["scenarios"], summary="List a scenario's pass/fail criteria",
            response=answers({200: schemas.Criteria}, 404))
def list_criteria(request, scenario_id: ScenarioId):
    scenario, _ = get_scenario_for_user(request, scenario_id)
    return {"criteria": [payloads.criterion(row) for row in scenario.thresholds.all()]}


@router.post("/scenarios/{scenario_id}/criteria/", url_name="api-scenario-criteria", operation_id="add_criterion",
             tags=["scenarios"], summary="Add a pass/fail criterion",
             response=answers({201: schemas.Criterion}, 400, 403, 404))
def add_criterion(request, scenario_id: ScenarioId, payload: Annotated[schemas.CriterionInput, JsonBody()]):
    """Maintainers. Checked like the criteria page: e.g. a window on the baseline rule answers 400 on
    `window_seconds`."""
    scenario, _ = get_scenario_for_user(request, scenario_id, Role.MAINTAINER)
    form = ThresholdForm({"enabled": True, **_given(payload)})
    if not form.is_valid():
        raise BadRequest(form_errors(form))
    criterion = form.save(commit=False)
    criterion.scenario = scenario
    criterion.save()
    return Status(201, payloads.criterion(criterion))


# -- project secrets -----------------------------------------------------------------------------

@router.get("/projects/{slug}/secrets/", url_name="api-project-secrets", operation_id="list_secrets",
            tags=["projects"], summary="List a project's secrets (names only)",
            response=answers({200: schemas.Secrets}, 404))
def list_secrets(request, slug: Slug):
    """Names and dates only: a value is never answered."""
    project, _ = get_project_for_user(request, slug)
    rows = project.secrets.select_related("updated_by")
    return {"secrets": [payloads.secret(row) for row in rows]}


def _store_secret(request, project, name: str, value) -> Any:
    if not value:
        raise BadRequest({"value": ["This field is required."]})
    try:
        return project_secrets.set_secret(project, name, value, request.user)
    except ValueError as problem:
        raise BadRequest({"value": [str(problem)]}) from None


@router.post("/projects/{slug}/secrets/", url_name="api-project-secrets", operation_id="set_secret",
             tags=["projects"], summary="Create or replace a project secret",
             response=answers({200: schemas.Secret, 201: schemas.Secret}, 400, 403, 404))
def set_secret(request, slug: Slug, payload: Annotated[schemas.SecretInput, JsonBody()]):
    """Maintainers. 201 when created, 200 when it replaced one. The value is never answered again, to anyone.
    Changing SECRET_KEY makes stored secrets unreadable: set them again then."""
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    given = _given(payload)
    name = given.get("name")
    errors = {field: ["This field is required."] for field in ("name", "value") if not given.get(field)}
    if errors:
        raise BadRequest(errors)
    problem = envvars.name_problem(name)
    if problem:
        raise BadRequest({"name": [problem]})
    existed = project.secrets.filter(name=name).exists()
    row = _store_secret(request, project, name, given["value"])
    return Status(200 if existed else 201, payloads.secret(row))


@router.put("/projects/{slug}/secrets/{name}/", url_name="api-project-secret", operation_id="replace_secret",
            tags=["projects"], summary="Replace a secret's value",
            response=answers({200: schemas.Secret}, 400, 403, 404))
def replace_secret(request, slug: Slug, name: SecretName, payload: Annotated[schemas.SecretValueInput, JsonBody()]):
    """Maintainers. Sets the value of the secret of that name (creating it when there is none)."""
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    problem = envvars.name_problem(name)
    if problem:
        raise BadRequest({"name": [problem]})
    return payloads.secret(_store_secret(request, project, name, _given(payload).get("value")))


@router.delete("/projects/{slug}/secrets/{name}/", url_name="api-project-secret", operation_id="delete_secret",
               tags=["projects"], summary="Delete a secret", response=answers({204: None}, 403, 404))
def delete_secret(request, slug: Slug, name: SecretName):
    """Maintainers. Scenarios that receive it cannot start runs until it is set again or unticked."""
    project, _ = get_project_for_user(request, slug, Role.MAINTAINER)
    if not project_secrets.delete_secret(project, name, request.user):
        raise ApiError(404, f"{project.name} has no secret named {name}.")
    return Status(204, None)


# -- runs ----------------------------------------------------------------------------------------

def _trigger_detail(request) -> dict:
    token = request.api_token
    return {"token": token.pk, "name": token.name} if token else {}


@router.get("/scenarios/{scenario_id}/runs/", url_name="api-scenario-runs", operation_id="list_runs",
            tags=["runs"], summary="List a scenario's runs", response=answers({200: schemas.Runs}, 404))
def list_runs(request, scenario_id: ScenarioId):
    """The last 50, newest first."""
    scenario, _ = get_scenario_for_user(request, scenario_id)
    rows = scenario.runs.defer("stats_blob", "totals")[:50]
    return {"runs": [payloads.run_brief(request, run) for run in rows]}


@router.post("/scenarios/{scenario_id}/runs/", url_name="api-scenario-runs", operation_id="start_run",
             tags=["runs"], summary="Start a run", response=answers({201: schemas.RunBrief}, 400, 403, 404, 503),
             openapi_extra={"requestBody": {"required": False}})
def start_run(request, scenario_id: ScenarioId, payload: Annotated[schemas.RunOverrides, JsonBody()]):
    """Runners and maintainers. The scenario's defaults with the overrides given (form data works too). The run is
    queued until the cluster has the slots it asks for; poll GET /api/runs/{id}/ until `terminal` is true."""
    scenario, _ = get_scenario_for_user(request, scenario_id, Role.RUNNER)
    data = _given(payload)
    version = scenario.current_version
    if version is None:
        raise BadRequest({"__all__": [f"{scenario.name} has no locustfile yet: upload one first."]})
    fields = {k: v for k, v in data.items() if k not in ("options", "env", "labels")}
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
        labels = run_labels.clean(_labels_object(data.get("labels")))
    except run_labels.LabelError as problem:
        errors["labels"] = problem.messages
    if errors:
        raise BadRequest(errors)
    try:
        run = services.start_run(scenario, user=request.user,
                                 params={**form.params(), "options": options, "env": _env_overrides(data.get("env"))},
                                 trigger=Run.Trigger.API, trigger_detail=_trigger_detail(request), labels=labels)
    except services.BrokerUnavailable as problem:
        raise ApiError(503, str(problem), Retry_After="5") from None
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
    return Status(201, payloads.run_brief(request, run))


def _labels_object(given):
    """`labels` of a run: an object of strings; in form data (api.types lets only form data send text), its JSON
    text or key=value lines."""
    if not isinstance(given, str):
        return given
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


@router.get("/runs/{run_id}/", url_name="api-run", operation_id="get_run", tags=["runs"],
            summary="Get a run's status and results", response=answers({200: schemas.Run}, 404))
def get_run(request, run_id: RunId):
    """Status, reason, verdict, totals, endpoints and slots of a run."""
    run, _ = get_run_for_user(request, run_id)
    return payloads.run(request, run)


@router.post("/runs/{run_id}/stop/", url_name="api-run-stop", operation_id="stop_run", tags=["runs"],
             summary="Stop a run", response=answers({202: schemas.RunStopped}, 403, 404, 409))
def stop_run(request, run_id: RunId):
    """Runners and maintainers. A running run stops its users within the stop timeout and keeps every slot's last
    numbers; one that has not started yet is cancelled. 409 when it has already ended."""
    run, _ = get_run_for_user(request, run_id, Role.RUNNER)
    stopped = services.request_stop(run, request.user)
    run.refresh_from_db()
    if not stopped and run.status in Run.TERMINAL:
        raise ApiError(409, f"Run #{run.pk} is {run.get_status_display().lower()}: there is nothing to stop.")
    return Status(202, {**payloads.run_brief(request, run), "stopped": stopped})


# -- report downloads ----------------------------------------------------------------------------

def _attachment(content: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content.encode("utf-8"), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"  # a running run's figures change every second
    return response


def _download(path: str, url_name: str, operation_id: str, summary: str, media_type: str, description: str,
              make, schema: dict | None = None) -> None:
    """Register a GET of one report file of a run: `make(run)` is (content, filename)."""

    def download(request, run_id: RunId):
        run, _ = get_run_for_user(request, run_id)
        content, filename = make(run)
        return _attachment(content, filename, media_type + ("; charset=utf-8" if media_type != "application/json"
                                                            else ""))

    download.__name__ = operation_id
    download.__doc__ = description + " A running run answers what has been collected so far."
    router.get(path, url_name=url_name, operation_id=operation_id, tags=["reports"], summary=summary,
               response=answers({200: None}, 404), openapi_extra={"responses": {200: {
                   "description": "The file, as an attachment.",
                   "content": {media_type: {"schema": schema or {"type": "string"}}},
                   "headers": {"Content-Disposition": {"required": True, "schema": {"type": "string"},
                                                       "description": "attachment; filename=\"run-<id>…\""}}}}})(
        download)


_download("/runs/{run_id}/report.json", "api-run-report-json", "download_report_json", "Download the JSON report",
          "application/json", "Every figure of the run (the document runs/reports.py describes).",
          lambda run: (json.dumps(reports.report_data(run), cls=DjangoJSONEncoder, indent=2),
                       reports.json_filename(run)),
          {"type": "object", "required": ["format", "version", "run"], "properties": {
              "format": {"const": "swarmdeck.run-report"}, "version": {"type": "integer"},
              "run": {"type": "object"}}})
for _kind, _text in (("stats", "Locust's _stats.csv: one row per endpoint, then Aggregated."),
                     ("stats_history", "Locust's _stats_history.csv: one row per second."),
                     ("failures", "Locust's _failures.csv."), ("exceptions", "Locust's _exceptions.csv.")):
    _download(f"/runs/{{run_id}}/{_kind}.csv", f"api-run-{_kind.replace('_', '-')}-csv", f"download_{_kind}_csv",
              f"Download {_kind}.csv", "text/csv", _text,
              lambda run, kind=_kind: (reports.CSV_FILES[kind](run), reports.csv_filename(run, kind)))
_download("/runs/{run_id}/report.html", "api-run-report-html", "download_report_html", "Download the HTML report",
          "text/html", "One self-contained page with the charts; opens offline.",
          lambda run: (reports.html_report(run), reports.html_filename(run)))


# -- the description, unknown paths --------------------------------------------------------------

@router.get("/schema/", url_name="api-schema", operation_id="get_schema", tags=["meta"], auth=None,
            summary="This OpenAPI document", response={200: dict[str, Any]})
def openapi(request):
    """The OpenAPI 3.1 document describing every operation; public, like any API's description."""
    from api import schema

    return JsonResponse(schema.document(request.build_absolute_uri("/").rstrip("/")),
                        json_dumps_params={"indent": 2})


def not_found(request, rest):
    """Any other /api/ path: a JSON 404 rather than an HTML page."""
    hint = " (did you leave out the trailing slash?)" if _resolves(f"/api/{rest}/") else ""
    return ApiError(404, f"There is no API endpoint at /api/{rest}{hint}. See /api/ (the docs) or "
                         "/api/schema/ (OpenAPI).").response()


def _resolves(path: str) -> bool:
    try:
        return resolve(path).url_name != "api-not-found"
    except Resolver404:
        return False
