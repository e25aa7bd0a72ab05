"""The API's request and response shapes as pydantic models: what is validated, and what the OpenAPI says.

Request models refuse unknown fields (extra="forbid") and wrongly typed JSON values (api/types.py);
the Django forms then apply the domain rules, so the UI and the API refuse the same things with the
same messages. Response models are what api/payloads.py builds: every answer is validated against
its model on the way out, so the document cannot drift from what is sent.
"""

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from api import types
from runs import labels as run_labels
from runs.models import Run as RunModel
from runs.models import Threshold
from scenarios import bundles
from workers import envvars


class Input(BaseModel):
    """A request body: unknown fields are refused. `example` is the document's example of it."""

    model_config = ConfigDict(extra="forbid")
    example: ClassVar[dict] = {}


class Output(BaseModel):
    """A response body: every key it has is documented."""

    model_config = ConfigDict(extra="forbid")


DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Uri = Annotated[str, Field(json_schema_extra={"format": "uri"})]
LABEL_KEY = "^" + run_labels.KEY_PATTERN.pattern + "$"
ENV_NAME = envvars.NAME_RE.pattern
Labels = Annotated[dict[str, str], Field(
    description="What the run tested, as it was labelled when it started; {} without labels.",
    json_schema_extra={"propertyNames": {"pattern": LABEL_KEY}, "example": {"env": "staging", "sut_version": "1.4.2"}})]
Variables = Annotated[dict[str, str], Field(json_schema_extra={"example": {"API_HOST": "https://staging.example.com"}})]


# -- errors --------------------------------------------------------------------------------------

class Error(Output):
    error: str


class LocustfileError(Output):
    """Where a locustfile is broken."""

    message: str
    path: str
    line: int | None
    column: int | None
    source_line: str | None
    text: str


class ValidationErrors(Output):
    errors: dict[str, list[str]] = Field(
        description="Messages by field; `__all__` holds those not tied to one field.",
        json_schema_extra={"example": {"users": ["Ensure this value is greater than or equal to 1."]}})
    locustfile_error: LocustfileError | None = Field(None, description="Only for an upload whose locustfile is "
                                                                       "broken: file, line and column.")


class Allowed(Output):
    """The answer to OPTIONS: the methods the path takes."""

    allow: list[str]


# -- projects ------------------------------------------------------------------------------------

SLUG_MESSAGE = "Enter a valid “slug” consisting of letters, numbers, underscores or hyphens."


class ProjectInput(Input):
    example: ClassVar[dict] = {"name": "Shop", "slug": "shop"}

    name: types.Text("Shown everywhere.", min_length=1, max_length=100, nullable=False, example="Shop")
    slug: types.Text("Used in URLs; derived from the name when left out.", max_length=60,
                     pattern=r"^[-a-zA-Z0-9_]*$", example="shop",
                     pattern_message=SLUG_MESSAGE) = None
    description: types.Text("What the project tests.") = None


class Project(Output):
    slug: str
    name: str
    description: str
    role: Literal["viewer", "runner", "maintainer"] = Field(description="Your role in it.")
    created_at: DateTime
    url: Uri = Field(description="Its page.")
    scenarios: Uri = Field(description="Its scenarios in the API.")


class Projects(Output):
    projects: list[Project]


# -- scenarios and locustfile versions -----------------------------------------------------------

LOCUSTFILE_LIMITS = (f"A .py locustfile (up to {bundles.MAX_PY_BYTES // 1048576} MB) or a .zip bundle (up to "
                     f"{bundles.MAX_ZIP_BYTES // 1048576} MB) with locustfile.py at its root. Analysed, never "
                     f"executed.")
EXAMPLE_LOCUSTFILE = ("from locust import HttpUser, task\n\n\nclass Shopper(HttpUser):\n    @task\n"
                      "    def home(self):\n        self.client.get(\"/\")\n")
Locustfile = types.Upload(LOCUSTFILE_LIMITS, max_bytes=bundles.MAX_ZIP_BYTES, example=EXAMPLE_LOCUSTFILE)
HOST = ("Base URL of the system under test (http:// or https://); \"\" or left out: the locustfile's user classes "
        "must set one.")


class ScenarioInput(Input):
    example: ClassVar[dict] = {
        "name": "Checkout", "locustfile": EXAMPLE_LOCUSTFILE, "default_host": "https://staging.example.com",
        "default_users": 50, "default_duration": "5m"}

    name: types.Text("Unique in its project.", min_length=1, max_length=100, nullable=False, example="Checkout")
    locustfile: Locustfile
    description: types.Text("What it tests.", nullable=False) = None
    default_host: types.Text(HOST, max_length=500, example="http://127.0.0.1:8089",
                              nullable=False) = None
    default_users: types.Whole("Peak concurrent users (default 10).", minimum=1, maximum=1_000_000, example=50,
                                 nullable=False) = None
    default_spawn_rate: types.Number("Users started per second (default 1).", minimum=0.01, maximum=100_000,
                                      nullable=False) = None
    default_duration: types.Duration("How long a run lasts (default 60 s).", example="5m", nullable=False) = None
    default_slots: types.Whole("Worker slots, one CPU core each (default 1).", minimum=1, maximum=1000,
                               nullable=False) = None


class VersionInput(Input):
    example: ClassVar[dict] = {"locustfile": EXAMPLE_LOCUSTFILE, "comment": "checkout flow v2"}

    locustfile: Locustfile
    comment: types.Text("What changed.", max_length=200, example="checkout flow v2",
                         nullable=False) = None


class VersionOption(Output):
    """A custom command-line option the locustfile adds (parser.add_argument), read statically."""

    name: str = Field(description="As on the command line: --region.")
    dest: str = Field(description="Its key in a run's `options`.")
    type: str | None = Field(description="str, int, float or bool.")
    default: Any = Field(description="Masked when is_secret; null with default_known false when computed at start.")
    default_known: bool | None
    default_text: str | None
    choices: list[Any] | None
    help: str | None
    required: bool | None
    include_in_web_ui: bool | None
    is_secret: bool | None


class Version(Output):
    number: int
    kind: Literal["py", "zip"]
    filename: str
    sha256: str
    size: int
    comment: str
    uploaded_by: str | None
    uploaded_at: DateTime
    user_classes: list[str]
    tags: list[str]
    shape: bool
    warnings: list[Any]
    options: list[VersionOption]
    url: Uri


class Environment(Output):
    """What the scenario's runs get in os.environ: its variables (visible to members) and the project secrets it
    receives, by name (values are never shown)."""

    variables: Variables
    secrets: list[str] = Field(description="Names of the project's secrets.", json_schema_extra={
        "example": ["API_TOKEN"]})


class Scenario(Output):
    id: int
    name: str
    description: str
    project: str = Field(description="The project's slug.")
    default_host: str = Field(description=HOST, json_schema_extra={"anyOf": [
        {"format": "uri"}, {"maxLength": 0}]})
    default_users: int
    default_spawn_rate: float
    default_duration: int = Field(description="Seconds.")
    default_slots: int
    environment: Environment
    current_version: Version | None
    created_at: DateTime
    updated_at: DateTime
    url: Uri
    runs: Uri = Field(description="Its runs in the API.")


class Scenarios(Output):
    scenarios: list[Scenario]


class EnvironmentInput(Input):
    """Both are replaced: variables left out are removed (an empty body removes them all)."""

    example: ClassVar[dict] = {
        "variables": {"API_HOST": "https://staging.example.com"}, "secrets": ["API_TOKEN"]}

    variables: types.Mapping(
        f"Names are POSIX environment variable names; PATH, HOME, PYTHON*, LD_*, SWARMDECK_*, REDIS_URL and a few "
        f"others are reserved. At most {envvars.MAX_VARIABLES} variables, {envvars.MAX_VALUE} characters per value, "
        f"32 KiB in all.",
        {"propertyNames": {"pattern": ENV_NAME, "maxLength": envvars.MAX_NAME},
         "additionalProperties": {"type": "string", "maxLength": envvars.MAX_VALUE},
         "maxProperties": envvars.MAX_VARIABLES,
         "example": {"API_HOST": "https://staging.example.com"}}) = None
    secrets: types.Names("Names of the project's secrets the runs receive.", example=["API_TOKEN"]) = None


# -- pass/fail criteria --------------------------------------------------------------------------

class CriterionInput(Input):
    example: ClassVar[dict] = {
        "metric": "p95", "value": 300, "window_seconds": 60, "window": "last", "abort_on_fail": True}

    metric: types.Choice("What is judged.", list(Threshold.Metric.values), nullable=False)
    value: types.Number("ms for response times, % for the failure ratio, requests/s for RPS, % worse for the "
                        "baseline rule.", minimum=0, nullable=False, example=300)
    endpoint: types.Text('Empty: the total; else one endpoint, "GET /cart".', max_length=600) = None
    window_seconds: types.Whole("0: the whole run. N: a rolling window of N seconds across all slots (not for "
                                "p95_baseline).", minimum=0, maximum=86400) = None
    window: types.Choice("last: the last N seconds (at the end, the last full window); any: every N-second window "
                         "of the run (the verdict judges the worst).", list(Threshold.Window.values),
                         default="last") = None
    baseline_runs: types.Whole("Baseline rule: how many last passing runs it compares with (default 5).",
                               minimum=1, maximum=50) = None
    abort_on_fail: types.Boolean("Stop the run live when broken.", default=False) = None
    grace_seconds: types.Whole("With abort on fail: not checked live during the first seconds.", minimum=0,
                               maximum=7 * 24 * 3600) = None
    enabled: types.Boolean("Judged on runs.", default=True) = None


class Criterion(Output):
    id: int
    criterion: str = Field(json_schema_extra={"example": "p95 of total over the last 60 s ≤ 300 ms"})
    metric: str
    endpoint: str
    value: float
    window_seconds: int
    window: Literal["last", "any"]
    baseline_runs: int
    abort_on_fail: bool
    grace_seconds: int
    enabled: bool


class Criteria(Output):
    criteria: list[Criterion]


# -- project secrets -----------------------------------------------------------------------------

SECRET_VALUE = (f"At least {envvars.MIN_SECRET} and at most {envvars.MAX_VALUE} characters, no NUL. Encrypted at "
                f"rest (Fernet, a key derived from SECRET_KEY); masked as [secret NAME] in logs, errors, reports, "
                f"webhooks and the API; never answered again.")


class SecretInput(Input):
    example: ClassVar[dict] = {"name": "API_TOKEN", "value": "s3cr3t-value"}

    name: types.Text("An environment variable name (not a reserved one: PATH, PYTHON*, SWARMDECK_*, ...).",
                     min_length=1, max_length=envvars.MAX_NAME, pattern=ENV_NAME, nullable=False,
                     pattern_message="Use letters, digits and _, not starting with a digit (e.g. API_TOKEN).",
                     example="API_TOKEN")
    value: types.Text(SECRET_VALUE, min_length=envvars.MIN_SECRET, max_length=envvars.MAX_VALUE,
                      pattern="^[^\\u0000]*$", pattern_message="The value contains a NUL character.",
                      nullable=False, example="s3cr3t-value")


class SecretValueInput(Input):
    example: ClassVar[dict] = {"value": "n3w-s3cr3t"}

    value: types.Text(SECRET_VALUE, min_length=envvars.MIN_SECRET, max_length=envvars.MAX_VALUE,
                      pattern="^[^\\u0000]*$", pattern_message="The value contains a NUL character.",
                      nullable=False, example="n3w-s3cr3t")


class Secret(Output):
    """A project secret: its value is write-only, never answered."""

    name: str
    created_at: DateTime
    updated_at: DateTime
    updated_by: str | None


class Secrets(Output):
    secrets: list[Secret]


# -- runs ----------------------------------------------------------------------------------------

LABELS_INPUT = {
    "maxProperties": run_labels.MAX_LABELS,
    "propertyNames": {"pattern": LABEL_KEY, "maxLength": run_labels.MAX_KEY_LENGTH},
    "additionalProperties": {"type": "string", "minLength": 1, "maxLength": run_labels.MAX_VALUE_LENGTH},
    "example": {"sut_version": "1.4.2", "commit": "abc123", "env": "staging"},
}


class RunOverrides(Input):
    """Every field is optional: the scenario's defaults fill the rest."""

    example: ClassVar[dict] = {
        "users": 50, "spawn_rate": 10, "duration": "5m", "labels": {"sut_version": "1.4.2", "env": "staging"}}

    users: types.Whole("Peak concurrent users.", minimum=1, maximum=1_000_000, example=50) = None
    spawn_rate: types.Number("Users started per second (split across the slots).", minimum=0.01,
                             maximum=100_000, example=10) = None
    duration: types.Duration("How long the run lasts.", example="5m") = None
    host: types.Text("http:// or https:// base URL, without query string or fragment. A host outside loopback "
                     "must be on the project's allowed targets.", max_length=500,
                     example="http://127.0.0.1:8089") = None
    slots: types.Whole("Worker slots; at most what the cluster has online.", minimum=1, maximum=1000) = None
    options: types.Mapping(
        "The locustfile's own command-line options (its version's `options`), by name without dashes: `locust "
        "--region eu` is {\"region\": \"eu\"}. Values are converted to the option's type (\"3\" or 3 for an int); "
        "an unknown option, a wrong type or a value outside its choices is refused. Options hidden from the web UI "
        "may be set here too. Secret ones are masked wherever the run is shown.",
        {"additionalProperties": True, "example": {"region": "eu"}}) = None
    env: types.Mapping(
        "Environment variables for this run: they override or add to the scenario's. A secret the scenario "
        "receives cannot be overridden.",
        {"propertyNames": {"pattern": ENV_NAME, "maxLength": envvars.MAX_NAME},
         "additionalProperties": {"type": "string", "maxLength": envvars.MAX_VALUE},
         "maxProperties": envvars.MAX_VARIABLES, "example": {"API_HOST": "https://staging.example.com"}}) = None
    labels: types.Mapping(
        "Labels of what this run tests, frozen on the run: keys are lowercase letters, digits and _ . - starting "
        "with a letter (at most 64 characters), values strings of one line (at most 200 characters); at most 20. "
        "History and trends filter by them (?label=env=staging). A bad label answers 400 on `labels`, naming it. "
        "In form data: the object as JSON text, or key=value lines.", LABELS_INPUT,
        text_label='an object of strings, e.g. {"env": "staging"}') = None


Status = Literal[tuple(RunModel.Status.values)]
Verdict = Literal["pass", "fail"] | None


class RunBrief(Output):
    id: int
    status: Status
    verdict: Verdict = Field(description="The thresholds' verdict; null until evaluated or without thresholds.")
    url: Uri = Field(description="The run's page.")
    api_url: Uri
    created_at: DateTime
    trigger: Literal[tuple(RunModel.Trigger.values)]
    labels: Labels


class RunStopped(RunBrief):
    stopped: bool = Field(description="Whether this request stopped (or cancelled) it.")


class Runs(Output):
    runs: list[RunBrief]


Figure = int | float | None


class Figures(BaseModel):
    requests: int
    failures: int
    rps: Figure
    p50_ms: Figure
    p95_ms: Figure
    p99_ms: Figure


class Totals(Figures):
    min_ms: Figure
    max_ms: Figure


class EndpointFigures(Figures):
    method: str | None
    name: str | None


class SlotFigures(BaseModel):
    index: int
    host: str
    state: str
    requests: int


class ScenarioRef(BaseModel):
    id: int
    name: str


DOWNLOADS = ["json", "stats_csv", "stats_history_csv", "failures_csv", "exceptions_csv", "html"]
Downloads = Annotated[dict[str, Uri], Field(
    description="Where to download its reports: " + ", ".join(DOWNLOADS) + ".",
    json_schema_extra={"propertyNames": {"enum": DOWNLOADS}, "required": DOWNLOADS})]


class Run(Output):
    id: int
    status: Status
    terminal: bool = Field(description="finished, failed or cancelled: it will not change.")
    reason: str = Field(description="Why it failed, was cancelled, or what was degraded.")
    ended_by: str = Field(description='What ended it: "duration reached", "stopped by <user>", "stopped", '
                                      '"aborted", "failed", "cancelled" or "its users or load shape ended"; '
                                      'empty while it is not ended.')
    verdict: Verdict = Field(description="The thresholds' verdict; null until evaluated or without thresholds.")
    criteria: list[dict[str, Any]] = Field(description="Each threshold criterion with its measured value, limit "
                                                       "and result (criterion, passed, applicable, measured, ...).")
    degraded: bool
    project: str = Field(description="The project's slug.")
    scenario: ScenarioRef
    locustfile_version: int
    params: dict[str, Any] = Field(description="The frozen parameters (secret options masked).")
    labels: Labels
    trigger: str
    created_by: str | None
    created_at: DateTime
    started_at: DateTime | None
    ended_at: DateTime | None
    elapsed_s: Figure
    summary: dict[str, Figure] = Field(description="The Aggregated figures, failure_percent included.")
    totals: Totals
    endpoints: list[EndpointFigures]
    slots: list[SlotFigures]
    warnings: list[Any]
    url: Uri
    reports: Downloads
