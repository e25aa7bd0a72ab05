"""The django-ninja API the JSON endpoints (api/views.py) are registered on, mounted at /api/.

django-ninja, because it validates requests from typed (pydantic) schemas and generates the OpenAPI
document from the same schemas, on plain Django views: no second framework of serializers beside
the Django forms, which stay the authority for domain rules (the UI and the API refuse the same).

What this module adds to ninja, so that clients see the API they always saw:
- bodies: JSON, or form data where the forms take it (JsonBody), multipart with the locustfile as a
  file part (MultipartBody, refused with 413 from its Content-Length before it is read); unknown
  fields are named with "Unknown field." and the fields accepted;
- errors: {"errors": {field: [messages]}} for 400, {"error": "..."} for the others, 401 with
  `WWW-Authenticate`; an id in the path that cannot exist is a 404 like a missing object;
- methods: OPTIONS answers the allowed methods, any other one is a JSON 405 with `Allow`;
- every request runs inside audit_log.via("api:<token name>") (or "api" for a browser session).
"""

import functools
import json
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Router
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.params.models import Body, BodyModel
from ninja.utils import normalize_path, replace_path_param_notation
from pydantic import BaseModel

from api.auth import NO_CREDENTIALS, ApiError, BadRequest, SessionAuth, TokenAuth, interface, unauthorized
from audit import log as audit_log
from scenarios import bundles

API_VERSION = "1"
# A multipart body a little over the largest allowed file (form fields, boundaries), as on the upload pages.
UPLOAD_REQUEST_LIMIT = bundles.MAX_ZIP_BYTES + 1024 * 1024
DESCRIPTION = ("Projects, scenarios, locustfiles and load-test runs of Swarmdeck. The same project scoping and roles "
               "as the web pages: other projects' objects answer 404, a role too low answers 403 (viewers read, "
               "runners start and stop runs, maintainers create scenarios and upload locustfiles). Bad input "
               "answers 400 with {\"errors\": {field: [messages]}}; unknown fields are refused.")


# -- request bodies ------------------------------------------------------------------------------

def _too_large(request: HttpRequest) -> None:
    """Refuse a huge upload from its Content-Length, before Django parses the body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length > UPLOAD_REQUEST_LIMIT:
        raise ApiError(413, f"The upload is {length / 1048576:.1f} MB. Swarmdeck takes a .py locustfile of up to "
                            f"{bundles.MAX_PY_BYTES // 1048576} MB or a .zip bundle of up to "
                            f"{bundles.MAX_ZIP_BYTES // 1048576} MB.")


def read_body(request: HttpRequest, *, files: bool = False) -> tuple[dict, Any]:
    """(data, files) of a JSON object or a form body; a BadRequest for anything else."""
    content_type = request.content_type or ""
    if content_type == "application/json":
        if files:
            raise BadRequest({"locustfile": ["Send multipart/form-data with the locustfile as a file part."]})
        if not request.body.strip():
            return {}, {}
        try:
            data = json.loads(request.body)
        except (UnicodeDecodeError, ValueError) as problem:
            raise BadRequest({"__all__": [f"The body is not valid JSON: {problem}."]}) from None
        if not isinstance(data, dict):
            raise BadRequest({"__all__": ["The JSON body must be an object of fields."]})
        return data, {}
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        data = {key: request.POST.get(key) for key in request.POST if key != "csrfmiddlewaretoken"}
        return data, request.FILES
    if request.body.strip():
        raise BadRequest({"__all__": [f"Send application/json or form data, not {content_type or 'no content type'}."]})
    return {}, {}


def reject_unknown(data: dict, allowed, files=None, allowed_files=()) -> None:
    """400 naming every field this endpoint does not take: a typo must not be silently ignored."""
    errors = {name: ["Unknown field."] for name in data if name not in allowed}
    errors.update({name: ["Unknown file field."] for name in files or {} if name not in allowed_files})
    if errors:
        accepted = ", ".join(sorted({*allowed, *allowed_files}))
        raise BadRequest({**errors, "__all__": [f"Fields accepted here: {accepted}."]})


def _file_fields(schema: type[BaseModel]) -> set[str]:
    return {name for name, field in schema.model_fields.items()
            if (field.json_schema_extra or {}).get("format") == "binary"
            or any(getattr(meta, "json_schema", {}).get("format") == "binary" for meta in field.metadata)}


class JsonBodyModel(BodyModel):
    """A JSON object (or form data, which the forms take too) validated by the view's input schema."""

    __media_types__: tuple[str, ...] = ("application/json",)
    __multipart__ = False

    @classmethod
    def get_request_data(cls, request, api, path_params):
        name = cls.__read_from_single_attr__
        schema = cls.model_fields[name].annotation
        if cls.__multipart__:
            _too_large(request)
        data, files = read_body(request, files=cls.__multipart__)
        uploads = _file_fields(schema)
        reject_unknown(data, set(schema.model_fields) - uploads, files, allowed_files=uploads)
        return {name: {**data, **{key: files[key] for key in files}}}


class MultipartBodyModel(JsonBodyModel):
    __media_types__ = ("multipart/form-data",)
    __multipart__ = True


class JsonBody(Body):
    """The request body, as a JSON object: `payload: Annotated[SomeInput, JsonBody()]`."""

    _model = JsonBodyModel

    def __init__(self, **kwargs):
        super().__init__(..., **kwargs)

    @classmethod
    def _param_source(cls) -> str:
        return "body"


class MultipartBody(JsonBody):
    """The request body as multipart/form-data, its files as file parts."""

    _model = MultipartBodyModel


# -- errors --------------------------------------------------------------------------------------

def _field_errors(errors: list[dict]) -> dict[str, list[str]]:
    """ninja's validation errors as {field: [messages]}, in the words the forms use."""
    result: dict[str, list[str]] = {}
    for problem in errors:
        location = problem["loc"]
        field = str(location[2]) if len(location) > 2 else "__all__"
        if problem["type"] == "missing":
            message = "This field is required."
        elif problem["type"] == "extra_forbidden":
            message = "Unknown field."
        else:
            message = problem["msg"]
        result.setdefault(field, []).append(message)
    return result


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    if any(problem["loc"][0] == "path" for problem in exc.errors):
        return ApiError(404, "Not found: no object has that id.").response()
    return JsonResponse({"errors": _field_errors(exc.errors)}, status=400)


def _bad_request(request: HttpRequest, exc: BadRequest) -> HttpResponse:
    return JsonResponse({"errors": exc.errors, **exc.extra}, status=400)


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return ApiError(exc.status_code, str(exc)).response()


def _install_handlers(api: NinjaAPI) -> None:
    api.add_exception_handler(ApiError, lambda request, exc: exc.response())
    api.add_exception_handler(BadRequest, _bad_request)
    api.add_exception_handler(ValidationError, _validation_error)
    api.add_exception_handler(AuthenticationError, lambda request, exc: unauthorized(NO_CREDENTIALS).response())
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(Http404, lambda request, exc: ApiError(404, str(exc) or "Not found.").response())
    api.add_exception_handler(
        PermissionDenied, lambda request, exc: ApiError(403, str(exc) or "Your role does not allow this.").response())


# -- the OpenAPI document ------------------------------------------------------------------------

STATUS_DESCRIPTIONS = {
    400: "Bad input: field errors; `__all__` holds errors not tied to one field.",
    401: "No token, an unknown one or a revoked one.",
    403: "Your role in the project does not allow this (or, with a browser session, the CSRF check failed).",
    404: "No such object among your projects' (other projects' objects are not found either).",
    409: "It is in a state that does not allow this.",
    413: "The upload is larger than any allowed locustfile.",
    503: "The task queue is unreachable: nothing was started. Retry after Retry-After seconds.",
}
RESPONSE_HEADERS = {
    401: {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}, "description": "Bearer."}},
    405: {"Allow": {"required": True, "schema": {"type": "string"}, "description": "The methods allowed."}},
    503: {"Retry-After": {"required": True, "schema": {"type": "string"}, "description": "Seconds."}},
}


class Document(OpenAPISchema):
    """ninja's document, with the body's media types of JsonBody/MultipartBody, the auth schemes under their own
    names, and every answer's description and headers."""

    def request_body(self, operation) -> dict:
        body = super().request_body(operation)
        model = next((m for m in operation.models if m.__ninja_param_source__ == "body"), None)
        if body and model is not None and hasattr(model, "__media_types__"):
            [content] = body["content"].values()
            example = model.model_fields[model.__read_from_single_attr__].annotation.example
            body["content"] = {media_type: {**content, **({"example": example} if example else {})}
                               for media_type in model.__media_types__}
        return body

    def responses(self, operation) -> dict:
        result = super().responses(operation)
        for status, answer in result.items():
            if status in STATUS_DESCRIPTIONS:
                answer["description"] = STATUS_DESCRIPTIONS[status]
            if status in RESPONSE_HEADERS:
                answer["headers"] = RESPONSE_HEADERS[status]
        return result

    def operation_security(self, operation) -> list | None:
        if not operation.auth_callbacks:
            return None
        for auth in operation.auth_callbacks:
            self.securitySchemes[auth.scheme_name] = auth.openapi_security_schema
        return [{auth.scheme_name: []} for auth in operation.auth_callbacks]


class SwarmdeckAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None) -> Document:
        return Document(self, "api/" if path_prefix is None else path_prefix)

    def get_openapi_operation_id(self, operation) -> str:
        return operation.view_func.__name__


def _audited(view):
    """Changes a request makes are recorded as coming from the API (audit.log.via)."""

    @functools.wraps(view)
    def inner(request, *args, **kwargs):
        with audit_log.via(interface(request)):
            return view(request, *args, **kwargs)

    return inner


def create_api(router: Router) -> SwarmdeckAPI:
    api = SwarmdeckAPI(title="Swarmdeck API", version=API_VERSION, description=DESCRIPTION, openapi_url=None,
                       docs_url=None, urls_namespace="swarmdeck-api", auth=[TokenAuth(), SessionAuth()])
    _install_handlers(api)
    router.add_decorator(_audited, mode="operation")
    api.add_router("", router)
    return api


# -- URLs ----------------------------------------------------------------------------------------

def _endpoint(view, methods: list[str]):
    """ninja's view of one path, behind the method check: OPTIONS answers, others are a JSON 405 with Allow."""
    allow = ", ".join(methods)

    @login_not_required
    @csrf_exempt
    @functools.wraps(view)
    def endpoint(request, *args, **kwargs):
        request.api_token = None
        if request.method == "OPTIONS":
            response = JsonResponse({"allow": methods})
            response["Allow"] = allow
            return response
        if request.method not in methods:
            return ApiError(405, f"{request.method} is not allowed here; use {allow}.", Allow=allow).response()
        return view(request, *args, **kwargs)

    endpoint.api_methods = tuple(methods)
    return endpoint


def url_patterns(api: SwarmdeckAPI) -> list[URLPattern]:
    """One URL pattern per path (ninja makes one per operation), each behind _endpoint."""
    methods: dict[str, list[str]] = {}
    for bound in api._get_bound_routers():
        for path, path_view in bound.path_operations.items():
            route = normalize_path(replace_path_param_notation(path)).lstrip("/")
            methods[route] = [method for operation in path_view.operations for method in operation.methods]
    patterns, seen = [], set()
    for pattern in api.urls[0]:
        route = str(pattern.pattern)
        if route not in methods or route in seen:
            continue  # ninja's own root view, or the second operation of a path
        seen.add(route)
        patterns.append(URLPattern(pattern.pattern, _endpoint(pattern.callback, methods[route]), pattern.default_args,
                                   pattern.name))
    return patterns
