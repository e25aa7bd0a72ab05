"""The OpenAPI 3 description of the API, written by hand, and the docs page's view of it.

tests/api/test_schema.py checks that every path here resolves to an API view that allows the
documented methods, and that every API URL is documented.
"""

import copy
import json
import shlex

API_VERSION = "1"

_ERROR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {"$ref": "#/components/schemas/ValidationErrors"}


def _json(schema_ref: str | dict, description: str) -> dict:
    schema = {"$ref": f"#/components/schemas/{schema_ref}"} if isinstance(schema_ref, str) else schema_ref
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_401 = _error("No token, an unknown one or a revoked one.")
_403 = _error("Your role in the project does not allow this (or, with a browser session, the CSRF check failed).")
_404 = _error("No such object among your projects' (other projects' objects are not found either).")
_400 = {"description": "Bad input: field errors; `__all__` holds errors not tied to one field.",
        "content": {"application/json": {"schema": _ERRORS}}}


def _path_param(name: str, description: str, example, kind: str = "integer") -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": kind}, "example": example}


SLUG = _path_param("slug", "The project's slug, as in its page's URL (/p/<slug>/).", "shop", "string")
SCENARIO_ID = _path_param("scenario_id", "The scenario's id, as in its page's URL (/scenarios/<id>/).", 1)
RUN_ID = _path_param("run_id", "The run's id, as in its page's URL (/runs/<id>/).", 1)
SECRET_NAME = _path_param("name", "The secret's name, as an environment variable name.", "API_TOKEN", "string")


def _download(operation_id: str, summary: str, media_type: str, description: str) -> dict:
    return {"get": {
        "operationId": operation_id, "summary": summary, "tags": ["reports"],
        "description": description + " A running run answers what has been collected so far.",
        "parameters": [RUN_ID],
        "responses": {"200": {"description": "The file, as an attachment.",
                              "content": {media_type: {"schema": {"type": "string"}}}},
                      "401": _401, "404": _404},
    }}


_DEFAULTS = {
    "default_host": {"type": "string", "format": "uri", "description": "Base URL of the system under test "
                     "(http:// or https://). Empty: the locustfile's user classes must set one."},
    "default_users": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 10,
                      "description": "Peak concurrent users."},
    "default_spawn_rate": {"type": "number", "minimum": 0.01, "maximum": 100000, "default": 1.0,
                           "description": "Users started per second."},
    "default_duration": {"type": "string", "default": "60",
                         "description": "Seconds, or a duration as Locust's -t takes it: 90, 30s, 5m, 1h30m "
                                        "(1 second to 7 days)."},
    "default_slots": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1,
                      "description": "Worker slots: one CPU core each."},
}

_VERSION_PROPS = {
    "number": {"type": "integer"}, "kind": {"type": "string", "enum": ["py", "zip"]},
    "filename": {"type": "string"}, "sha256": {"type": "string"}, "size": {"type": "integer"},
    "comment": {"type": "string"}, "uploaded_by": {"type": ["string", "null"]},
    "uploaded_at": {"type": "string", "format": "date-time"},
    "user_classes": {"type": "array", "items": {"type": "string"}},
    "tags": {"type": "array", "items": {"type": "string"}}, "shape": {"type": "boolean"},
    "warnings": {"type": "array", "items": {}}, "url": {"type": "string", "format": "uri"},
    "options": {"type": "array", "description": "The custom command-line options the locustfile adds "
                "(parser.add_argument in an init_command_line_parser listener), read statically: name (--region), "
                "dest (the key in a run's `options`), type (str, int, float or bool), default (null with "
                "default_known false when computed at start), choices, help, required, include_in_web_ui, "
                "is_secret (its default is masked).",
                "items": {"type": "object"}},
}

_FIGURES = {
    "requests": {"type": "integer"}, "failures": {"type": "integer"}, "rps": {"type": ["number", "null"]},
    "p50_ms": {"type": ["number", "null"]}, "p95_ms": {"type": ["number", "null"]},
    "p99_ms": {"type": ["number", "null"]},
}

_LABEL_KEY = "^[a-z][a-z0-9_.-]*$"
_LABELS = {"type": "object", "propertyNames": {"pattern": _LABEL_KEY},
           "additionalProperties": {"type": "string"}, "example": {"env": "staging", "sut_version": "1.4.2"},
           "description": "What the run tested, as it was labelled when it started; {} without labels."}
_LABELS_INPUT = {
    "type": "object", "maxProperties": 20,
    "propertyNames": {"pattern": _LABEL_KEY, "maxLength": 64},
    "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200},
    "example": {"sut_version": "1.4.2", "commit": "abc123", "env": "staging"},
    "description": "Labels of what this run tests, frozen on the run: keys are lowercase letters, digits and "
                   "_ . - starting with a letter (at most 64 characters), values strings of one line (at most 200 "
                   "characters); at most 20. History and trends filter by them (?label=env=staging). A bad label "
                   "answers 400 on `labels`, naming it. In form data: the object as JSON text, or key=value lines.",
}

_CRITERION = {
    "type": "object",
    "properties": {
        "id": {"type": ["integer", "null"]},
        "criterion": {"type": "string", "example": "p95 of total over the last 60 s ≤ 300 ms"},
        "metric": {"type": "string"}, "scope": {"type": "string"}, "operator": {"type": "string"},
        "unit": {"type": "string"}, "limit": {"type": ["number", "null"]}, "limit_text": {"type": "string"},
        "measured": {"type": ["number", "null"]}, "measured_text": {"type": "string"},
        "passed": {"type": "boolean"}, "applicable": {"type": "boolean"}, "aborted": {"type": "boolean"},
        "detail": {"type": "string"},
        "window": {
            "type": "object",
            "description": "Only for a criterion judged on rolling windows: their length and kind (`last`: the "
                           "last N seconds, `any`: every N-second window) and the window measured (for `any` the "
                           "worst, for `last` the last full one before the end, or the one that aborted the run) "
                           "in seconds since the run's start and as times; no start/end without a full window.",
            "properties": {"seconds": {"type": "integer"}, "kind": {"type": "string", "enum": ["last", "any"]},
                           "start_s": {"type": "integer"}, "end_s": {"type": "integer"},
                           "requests": {"type": "integer"},
                           "start": {"type": "string", "format": "date-time"},
                           "end": {"type": "string", "format": "date-time"}},
        },
    },
}

_STATUSES = ["queued", "dispatching", "starting", "running", "stopping", "finished", "failed", "cancelled"]

COMPONENTS = {
    "securitySchemes": {
        "token": {"type": "http", "scheme": "bearer",
                  "description": "An API token from your user menu → API tokens, or `manage.py apitoken USERNAME`. "
                                 "`Authorization: Token <key>` works too."},
        "session": {"type": "apiKey", "in": "cookie", "name": "sessionid",
                    "description": "A logged-in browser session; writes then need Django's CSRF token."},
    },
    "schemas": {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "ValidationErrors": {
            "type": "object", "required": ["errors"],
            "properties": {
                "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                           "example": {"users": ["Ensure this value is greater than or equal to 1."]}},
                "locustfile_error": {"type": "object", "description": "Where a locustfile is broken.",
                                     "properties": {"message": {"type": "string"}, "path": {"type": "string"},
                                                    "line": {"type": ["integer", "null"]},
                                                    "column": {"type": ["integer", "null"]},
                                                    "source_line": {"type": ["string", "null"]},
                                                    "text": {"type": "string"}}},
            },
        },
        "ProjectInput": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "maxLength": 100, "description": "Shown everywhere."},
                           "slug": {"type": "string", "maxLength": 60,
                                    "description": "Used in URLs; derived from the name when left out."},
                           "description": {"type": "string"}},
        },
        "Project": {
            "type": "object",
            "properties": {"slug": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
                           "role": {"type": "string", "enum": ["viewer", "runner", "maintainer"]},
                           "created_at": {"type": "string", "format": "date-time"},
                           "url": {"type": "string", "format": "uri"},
                           "scenarios": {"type": "string", "format": "uri",
                                         "description": "Its scenarios in the API."}},
        },
        "ScenarioInput": {
            "type": "object", "required": ["name", "locustfile"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "maxLength": 100},
                           "locustfile": {"type": "string", "format": "binary",
                                          "description": "A .py (up to 1 MB) or a .zip bundle (up to 10 MB) with "
                                                         "locustfile.py at its root. Analysed, never executed."},
                           "description": {"type": "string"}, **_DEFAULTS},
        },
        "VersionInput": {
            "type": "object", "required": ["locustfile"], "additionalProperties": False,
            "properties": {"locustfile": {"type": "string", "format": "binary",
                                          "description": "Refused when identical to the current version."},
                           "comment": {"type": "string", "maxLength": 200, "description": "What changed."}},
        },
        "Version": {"type": "object", "properties": _VERSION_PROPS},
        "Scenario": {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "description": {"type": "string"},
                           "project": {"type": "string", "description": "The project's slug."},
                           **{name: {k: v for k, v in prop.items() if k != "default"}
                              for name, prop in _DEFAULTS.items()},
                           "default_duration": {"type": "integer", "description": "Seconds."},
                           "current_version": {"oneOf": [{"$ref": "#/components/schemas/Version"}, {"type": "null"}]},
                           "created_at": {"type": "string", "format": "date-time"},
                           "updated_at": {"type": "string", "format": "date-time"},
                           "url": {"type": "string", "format": "uri"},
                           "runs": {"type": "string", "format": "uri", "description": "Its runs in the API."},
                           "environment": {"$ref": "#/components/schemas/Environment"}},
        },
        "Criterion": {
            "type": "object", "required": ["metric", "value"],
            "properties": {
                "id": {"type": "integer", "readOnly": True},
                "criterion": {"type": "string", "readOnly": True,
                              "example": "p95 of total over the last 60 s ≤ 300 ms"},
                "metric": {"type": "string", "enum": ["p50", "p95", "p99", "mean", "failure_ratio", "rps",
                                                      "p95_baseline"]},
                "endpoint": {"type": "string", "description": "Empty: the total; else one endpoint, \"GET /cart\"."},
                "value": {"type": "number", "minimum": 0,
                          "description": "ms for response times, % for the failure ratio, requests/s for RPS, % worse "
                                         "for the baseline rule."},
                "window_seconds": {"type": "integer", "minimum": 0, "maximum": 86400, "default": 0,
                                   "description": "0: the whole run. N: a rolling window of N seconds across all "
                                                  "slots (not for p95_baseline)."},
                "window": {"type": "string", "enum": ["last", "any"], "default": "last",
                           "description": "last: the last N seconds (at the end, the last full window); any: every "
                                          "N-second window of the run (the verdict judges the worst)."},
                "baseline_runs": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
                "abort_on_fail": {"type": "boolean", "default": False},
                "grace_seconds": {"type": "integer", "minimum": 0, "default": 0},
                "enabled": {"type": "boolean", "default": True},
            },
        },
        "Environment": {
            "type": "object",
            "description": "What the scenario's runs get in os.environ: its variables (visible to members) and "
                           "the project secrets it receives, by name (values are never shown). Names are POSIX "
                           "environment variable names; PATH, HOME, PYTHON*, LD_*, SWARMDECK_*, REDIS_URL and a "
                           "few others are reserved. At most 100 variables, 4096 characters per value, 32 KiB in all.",
            "properties": {
                "variables": {"type": "object", "additionalProperties": {"type": "string"},
                              "example": {"API_HOST": "https://staging.example.com"}},
                "secrets": {"type": "array", "items": {"type": "string"}, "example": ["API_TOKEN"],
                            "description": "Names of the project's secrets."},
            },
        },
        "Secret": {
            "type": "object", "description": "A project secret: its value is write-only, never answered.",
            "properties": {"name": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                           "updated_at": {"type": "string", "format": "date-time"},
                           "updated_by": {"type": ["string", "null"]}},
        },
        "SecretInput": {
            "type": "object", "required": ["name", "value"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "example": "API_TOKEN"},
                           "value": {"type": "string", "minLength": 4, "maxLength": 4096,
                                     "description": "Encrypted at rest (Fernet, a key derived from SECRET_KEY); "
                                                    "masked as [secret NAME] in logs, errors, reports, webhooks "
                                                    "and the API."}},
        },
        "RunOverrides": {
            "type": "object", "additionalProperties": False,
            "description": "Every field is optional: the scenario's defaults fill the rest. Unknown fields are "
                           "refused. Send JSON or form data.",
            "properties": {
                "users": {"type": "integer", "minimum": 1, "maximum": 1000000, "description": "Peak concurrent users."},
                "spawn_rate": {"type": "number", "minimum": 0.01, "maximum": 100000,
                               "description": "Users started per second (split across the slots)."},
                "duration": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "example": "5m"}],
                             "description": "Seconds, or 90, 30s, 5m, 1h30m (1 second to 7 days)."},
                "host": {"type": "string", "format": "uri", "description": "http:// or https:// base URL."},
                "slots": {"type": "integer", "minimum": 1, "maximum": 1000,
                          "description": "Worker slots; at most what the cluster has online."},
                "options": {"type": "object", "additionalProperties": True, "example": {"region": "eu"},
                            "description": "The locustfile's own command-line options (its version's `options`), "
                                           "by name without dashes: `locust --region eu` is {\"region\": \"eu\"}. "
                                           "Values are converted to the option's type (\"3\" or 3 for an int); an "
                                           "unknown option, a wrong type or a value outside its choices is refused. "
                                           "Options hidden from the web UI may be set here too. Secret ones are "
                                           "masked wherever the run is shown."},
                "env": {"type": "object", "additionalProperties": {"type": "string"},
                        "example": {"API_HOST": "https://staging.example.com"},
                        "description": "Environment variables for this run: they override or add to the "
                                       "scenario's. A secret the scenario receives cannot be overridden."},
                "labels": _LABELS_INPUT,
            },
        },
        "RunBrief": {
            "type": "object", "required": ["id", "status", "url"],
            "properties": {"id": {"type": "integer"}, "status": {"type": "string", "enum": _STATUSES},
                           "verdict": {"type": ["string", "null"], "enum": ["pass", "fail", None]},
                           "url": {"type": "string", "format": "uri", "description": "The run's page."},
                           "api_url": {"type": "string", "format": "uri"},
                           "created_at": {"type": "string", "format": "date-time"},
                           "trigger": {"type": "string", "enum": ["manual", "cli", "schedule", "api"]},
                           "labels": _LABELS,
                           "stopped": {"type": "boolean", "description": "Only in the answer to a stop."}},
        },
        "Run": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "status": {"type": "string", "enum": _STATUSES},
                "terminal": {"type": "boolean", "description": "finished, failed or cancelled: it will not change."},
                "reason": {"type": "string", "description": "Why it failed, was cancelled, or what was degraded."},
                "verdict": {"type": ["string", "null"], "enum": ["pass", "fail", None],
                            "description": "The thresholds' verdict; null until evaluated or without thresholds."},
                "criteria": {"type": "array", "items": _CRITERION,
                             "description": "Each threshold criterion with its measured value, limit and result."},
                "degraded": {"type": "boolean"}, "project": {"type": "string"},
                "scenario": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
                "locustfile_version": {"type": "integer"},
                "params": {"type": "object", "description": "The frozen parameters."},
                "labels": _LABELS,
                "trigger": {"type": "string"}, "created_by": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "ended_at": {"type": ["string", "null"], "format": "date-time"},
                "elapsed_s": {"type": ["number", "null"]},
                "summary": {"type": "object", "description": "The Aggregated figures, failure_percent included."},
                "totals": {"type": "object", "properties": {**_FIGURES, "min_ms": {"type": ["number", "null"]},
                                                            "max_ms": {"type": ["number", "null"]}}},
                "endpoints": {"type": "array", "items": {"type": "object", "properties": {
                    "method": {"type": "string"}, "name": {"type": "string"}, **_FIGURES}}},
                "slots": {"type": "array", "items": {"type": "object", "properties": {
                    "index": {"type": "integer"}, "host": {"type": "string"}, "state": {"type": "string"},
                    "requests": {"type": "integer"}}}},
                "warnings": {"type": "array", "items": {"type": "object"}},
                "url": {"type": "string", "format": "uri"},
                "reports": {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}},
            },
        },
    },
}

PATHS = {
    "/api/projects/": {
        "get": {"operationId": "list_projects", "summary": "List your projects", "tags": ["projects"],
                "description": "The projects you are a member of, with your role in each.",
                "responses": {"200": _json({"type": "object", "properties": {"projects": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Project"}}}}, "Your projects."),
                    "401": _401}},
        "post": {"operationId": "create_project", "summary": "Create a project", "tags": ["projects"],
                 "description": "You become its maintainer.",
                 "requestBody": {"required": True, "content": {
                     "application/json": {"schema": {"$ref": "#/components/schemas/ProjectInput"}},
                     "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/ProjectInput"}}}},
                 "x-example": {"json": {"name": "Shop", "slug": "shop"}},
                 "responses": {"201": _json("Project", "Created."), "400": _400, "401": _401}},
    },
    "/api/projects/{slug}/scenarios/": {
        "parameters": [SLUG],
        "get": {"operationId": "list_scenarios", "summary": "List a project's scenarios", "tags": ["scenarios"],
                "responses": {"200": _json({"type": "object", "properties": {"scenarios": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Scenario"}}}}, "Its scenarios."),
                    "401": _401, "404": _404}},
        "post": {"operationId": "create_scenario", "summary": "Create a scenario with its locustfile",
                 "tags": ["scenarios"],
                 "description": "Maintainers. Validated as on the New scenario page: a broken locustfile answers "
                                "400 naming the file, line and column, and nothing is stored. Defaults left out "
                                "take the usual values.",
                 "requestBody": {"required": True, "content": {"multipart/form-data": {
                     "schema": {"$ref": "#/components/schemas/ScenarioInput"}}}},
                 "x-example": {"form": {"name": "Checkout", "locustfile": "@locustfile.py",
                                        "default_host": "https://staging.example.com", "default_users": "50",
                                        "default_duration": "5m"}},
                 "responses": {"201": _json("Scenario", "Created, with locustfile version 1."), "400": _400,
                               "401": _401, "403": _403, "404": _404,
                               "413": _error("The upload is larger than any allowed locustfile.")}},
    },
    "/api/scenarios/{scenario_id}/": {
        "parameters": [SCENARIO_ID],
        "get": {"operationId": "get_scenario", "summary": "Get a scenario", "tags": ["scenarios"],
                "responses": {"200": _json("Scenario", "The scenario, its defaults and current locustfile version."),
                              "401": _401, "404": _404}},
    },
    "/api/scenarios/{scenario_id}/environment/": {
        "parameters": [SCENARIO_ID],
        "get": {"operationId": "get_environment", "summary": "Get a scenario's environment variables and secrets",
                "tags": ["scenarios"],
                "responses": {"200": _json("Environment", "Variables with values, secrets by name."),
                              "401": _401, "404": _404}},
        "put": {"operationId": "set_environment", "summary": "Set a scenario's environment variables and secrets",
                "tags": ["scenarios"],
                "description": "Maintainers. Replaces both: variables left out are removed.",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Environment"}}}},
                "x-example": {"json": {"variables": {"API_HOST": "https://staging.example.com"},
                                       "secrets": ["API_TOKEN"]}},
                "responses": {"200": _json("Environment", "Saved."), "400": _400, "401": _401, "403": _403,
                              "404": _404}},
    },
    "/api/scenarios/{scenario_id}/criteria/": {
        "parameters": [SCENARIO_ID],
        "get": {"operationId": "list_criteria", "summary": "List a scenario's pass/fail criteria",
                "tags": ["scenarios"],
                "responses": {"200": _json({"type": "object", "properties": {"criteria": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Criterion"}}}}, "Its criteria."),
                              "401": _401, "404": _404}},
        "post": {"operationId": "add_criterion", "summary": "Add a pass/fail criterion", "tags": ["scenarios"],
                 "description": "Maintainers. Checked like the criteria page: e.g. a window on the baseline rule "
                                "answers 400 on `window_seconds`.",
                 "requestBody": {"required": True, "content": {
                     "application/json": {"schema": {"$ref": "#/components/schemas/Criterion"}}}},
                 "x-example": {"json": {"metric": "p95", "value": 300, "window_seconds": 60, "window": "last",
                                        "abort_on_fail": True}},
                 "responses": {"201": _json("Criterion", "Added."), "400": _400, "401": _401, "403": _403,
                               "404": _404}},
    },
    "/api/projects/{slug}/secrets/": {
        "parameters": [SLUG],
        "get": {"operationId": "list_secrets", "summary": "List a project's secrets (names only)",
                "tags": ["projects"],
                "responses": {"200": _json({"type": "object", "properties": {"secrets": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Secret"}}}}, "Its secrets, no values."),
                    "401": _401, "404": _404}},
        "post": {"operationId": "set_secret", "summary": "Create or replace a project secret", "tags": ["projects"],
                 "description": "Maintainers. The value is never answered again, to anyone. Changing SECRET_KEY "
                                "makes stored secrets unreadable: set them again then.",
                 "requestBody": {"required": True, "content": {
                     "application/json": {"schema": {"$ref": "#/components/schemas/SecretInput"}}}},
                 "x-example": {"json": {"name": "API_TOKEN", "value": "s3cr3t-value"}},
                 "responses": {"201": _json("Secret", "Created."), "200": _json("Secret", "Replaced."),
                               "400": _400, "401": _401, "403": _403, "404": _404}},
    },
    "/api/projects/{slug}/secrets/{name}/": {
        "parameters": [SLUG, SECRET_NAME],
        "put": {"operationId": "replace_secret", "summary": "Replace a secret's value", "tags": ["projects"],
                "description": "Maintainers.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["value"], "properties": {"value": {"type": "string"}}}}}},
                "x-example": {"json": {"value": "n3w-s3cr3t"}},
                "responses": {"200": _json("Secret", "Replaced."), "400": _400, "401": _401, "403": _403,
                              "404": _404}},
        "delete": {"operationId": "delete_secret", "summary": "Delete a secret", "tags": ["projects"],
                   "description": "Maintainers. Scenarios that receive it cannot start runs until it is set again "
                                  "or unticked.",
                   "responses": {"204": {"description": "Deleted."}, "401": _401, "403": _403, "404": _404}},
    },
    "/api/scenarios/{scenario_id}/locustfile/": {
        "parameters": [SCENARIO_ID],
        "post": {"operationId": "upload_locustfile", "summary": "Upload a new locustfile version",
                 "tags": ["scenarios"],
                 "description": "Maintainers. Validated as on the upload page; the same file as the current version "
                                "is refused.",
                 "requestBody": {"required": True, "content": {"multipart/form-data": {
                     "schema": {"$ref": "#/components/schemas/VersionInput"}}}},
                 "x-example": {"form": {"locustfile": "@locustfile.py", "comment": "checkout flow v2"}},
                 "responses": {"201": _json("Version", "The new version."), "400": _400, "401": _401, "403": _403,
                               "404": _404, "413": _error("The upload is larger than any allowed locustfile.")}},
    },
    "/api/scenarios/{scenario_id}/runs/": {
        "parameters": [SCENARIO_ID],
        "get": {"operationId": "list_runs", "summary": "List a scenario's runs", "tags": ["runs"],
                "description": "The last 50, newest first.",
                "responses": {"200": _json({"type": "object", "properties": {"runs": {
                    "type": "array", "items": {"$ref": "#/components/schemas/RunBrief"}}}}, "Its runs."),
                    "401": _401, "404": _404}},
        "post": {"operationId": "start_run", "summary": "Start a run", "tags": ["runs"],
                 "description": "Runners and maintainers. The run is queued until the cluster has the slots it "
                                "asks for; poll GET /api/runs/{id}/ until `terminal` is true.",
                 "requestBody": {"required": False, "content": {
                     "application/json": {"schema": {"$ref": "#/components/schemas/RunOverrides"}},
                     "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/RunOverrides"}}}},
                 "x-example": {"json": {"users": 50, "spawn_rate": 10, "duration": "5m",
                                        "labels": {"sut_version": "1.4.2", "env": "staging"}}},
                 "responses": {"201": _json("RunBrief", "Queued."), "400": _400, "401": _401, "403": _403,
                               "404": _404}},
    },
    "/api/runs/{run_id}/": {
        "parameters": [RUN_ID],
        "get": {"operationId": "get_run", "summary": "Get a run's status and results", "tags": ["runs"],
                "responses": {"200": _json("Run", "Status, reason, verdict, totals, endpoints and slots."),
                              "401": _401, "404": _404}},
    },
    "/api/runs/{run_id}/stop/": {
        "parameters": [RUN_ID],
        "post": {"operationId": "stop_run", "summary": "Stop a run", "tags": ["runs"],
                 "description": "Runners and maintainers. A running run stops its users within the stop timeout "
                                "and keeps every slot's last numbers; one that has not started yet is cancelled.",
                 "responses": {"202": _json("RunBrief", "Stopping (or cancelled)."), "401": _401, "403": _403,
                               "404": _404, "409": _error("The run has already ended.")}},
    },
    "/api/runs/{run_id}/report.json": _download(
        "download_report_json", "Download the JSON report", "application/json",
        "Every figure of the run (the document runs/reports.py describes)."),
    "/api/runs/{run_id}/stats.csv": _download(
        "download_stats_csv", "Download stats.csv", "text/csv",
        "Locust's _stats.csv: one row per endpoint, then Aggregated."),
    "/api/runs/{run_id}/stats_history.csv": _download(
        "download_stats_history_csv", "Download stats_history.csv", "text/csv",
        "Locust's _stats_history.csv: one row per second."),
    "/api/runs/{run_id}/failures.csv": _download(
        "download_failures_csv", "Download failures.csv", "text/csv", "Locust's _failures.csv."),
    "/api/runs/{run_id}/exceptions.csv": _download(
        "download_exceptions_csv", "Download exceptions.csv", "text/csv", "Locust's _exceptions.csv."),
    "/api/runs/{run_id}/report.html": _download(
        "download_report_html", "Download the HTML report", "text/html",
        "One self-contained page with the charts; opens offline."),
    "/api/schema/": {
        "get": {"operationId": "get_schema", "summary": "This OpenAPI document", "tags": ["meta"], "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {
                    "schema": {"type": "object"}}}}}},
    },
}

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document(base_url: str = "") -> dict:
    """The OpenAPI document, its server being this Swarmdeck."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Swarmdeck API", "version": API_VERSION,
                 "description": "Projects, scenarios, locustfiles and load-test runs of Swarmdeck. The same "
                                "project scoping and roles as the web pages: other projects' objects answer 404, "
                                "a role too low answers 403 (viewers read, runners start and stop runs, "
                                "maintainers create scenarios and upload locustfiles)."},
        "servers": [{"url": base_url or "/"}],
        "security": [{"token": []}, {"session": []}],
        "tags": [{"name": name} for name in ("projects", "scenarios", "runs", "reports", "meta")],
        "paths": copy.deepcopy(PATHS),
        "components": copy.deepcopy(COMPONENTS),
    }


def _resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def curl(base: str, path: str, method: str, operation: dict, parameters: list[dict]) -> str:
    """A curl command for the operation with example values, the key read from $SWARMDECK_TOKEN."""
    for parameter in parameters:
        path = path.replace(f"{{{parameter['name']}}}", str(parameter.get("example", parameter["name"])))
    segments = ["curl -sS" + ("" if method == "get" else f" -X {method.upper()}"),
                '-H "Authorization: Bearer $SWARMDECK_TOKEN"']
    example = operation.get("x-example", {})
    if "json" in example:
        segments += ["-H 'Content-Type: application/json'", "-d " + shlex.quote(json.dumps(example["json"]))]
    segments += ["-F " + shlex.quote(f"{name}={value}") for name, value in example.get("form", {}).items()]
    if operation.get("responses", {}).get("200", {}).get("content", {}).keys() - {"application/json"}:
        segments.append("-OJ")  # a download: save it under the server's file name
    segments.append(shlex.quote(base + path))
    line = " ".join(segments)
    return line if len(line) <= 100 else " \\\n  ".join(segments)


def operations(document: dict, base: str) -> list[dict]:
    """One entry per path and method, flattened for the docs page."""
    rows = []
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = item.get("parameters", []) + operation.get("parameters", [])
            fields = []
            for _media_type, content in (operation.get("requestBody") or {}).get("content", {}).items():
                schema = _resolve(document, content["schema"])
                required = set(schema.get("required", []))
                fields = [{"name": name, "type": _type(document, prop), "required": name in required,
                           "description": prop.get("description", ""), "limits": _limits(prop)}
                          for name, prop in schema.get("properties", {}).items()]
                break
            rows.append({
                "id": operation["operationId"], "method": method.upper(), "path": path,
                "summary": operation.get("summary", ""), "description": operation.get("description", ""),
                "parameters": parameters, "fields": fields,
                "body_types": list((operation.get("requestBody") or {}).get("content", {})),
                "responses": [{"status": status, "description": response.get("description", "")}
                              for status, response in operation.get("responses", {}).items()],
                "public": operation.get("security") == [],
                "curl": curl(base, path, method, operation, parameters),
            })
    return rows


def _limits(prop: dict) -> str:
    words = {"minimum": "at least", "maximum": "at most", "maxLength": "characters at most", "default": "default"}
    return ", ".join(f"{words[key]} {prop[key]}" for key in words if key in prop)


def _type(document: dict, prop: dict) -> str:
    if "oneOf" in prop:
        return " or ".join(_type(document, option) for option in prop["oneOf"])
    prop = _resolve(document, prop)
    kind = prop.get("type", "object")
    if prop.get("format") == "binary":
        return "file"
    return kind if isinstance(kind, str) else " or ".join(kind)
