"""How every JSON endpoint authenticates, checks its method and reports errors.

A request with an `Authorization: Bearer <key>` (or `Token <key>`) header acts as the token's
user and is exempt from CSRF: a browser never sends that header by itself. Without the header a
logged-in browser session may use the API too, and then CSRF applies to writes as on any page.
Errors are JSON: {"error": "..."} for 401/403/404/405, {"errors": {field: [messages]}} for 400.
"""

import functools
import json

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from api.models import ApiToken
from audit import log as audit_log

SCHEMES = ("bearer", "token")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class BadRequest(Exception):
    """Field errors for a 400 answer: {"field": ["message", ...]}."""

    def __init__(self, errors: dict, **extra):
        self.errors = errors
        self.extra = extra
        super().__init__(errors)


def error(status: int, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def unauthorized(message: str) -> JsonResponse:
    return error(401, message, WWW_Authenticate='Bearer realm="swarmdeck"')


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def _csrf_failure(request) -> str | None:
    """Why a session request's write fails Django's CSRF check, or None (as in Django REST framework)."""
    check = _CsrfCheck(lambda request: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def _authenticate(request) -> JsonResponse | None:
    """Set request.user (and request.api_token) from the header or the session; an error response otherwise."""
    request.api_token = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() not in SCHEMES or not key or " " in key:
            return unauthorized("Send the token as `Authorization: Bearer <key>`.")
        token = ApiToken.authenticate(key)
        if token is None:
            return unauthorized("This API token is not valid: it is unknown or was revoked.")
        request.user = token.user
        request.api_token = token
        return None
    if not request.user.is_authenticated:
        return unauthorized("Authentication required: send `Authorization: Bearer <key>` with an API token.")
    if request.method not in SAFE_METHODS:
        reason = _csrf_failure(request)
        if reason:
            return error(403, f"CSRF check failed ({reason}). Scripts should authenticate with an API token.")
    return None


def _interface(request) -> str:
    """The audit log's interface of an API request: the token's name, or "api" for a browser session."""
    token = getattr(request, "api_token", None)
    return f"api:{token.name}" if token is not None else "api"


def api_view(*methods: str, public: bool = False):
    """Token or session authentication (unless public), allowed methods, JSON answers for 400/403/404/405."""
    allowed = tuple(m.upper() for m in methods)

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "OPTIONS" and "OPTIONS" not in allowed:
                response = JsonResponse({"allow": list(allowed)})
                response["Allow"] = ", ".join(allowed)
                return response
            if request.method not in allowed:
                return error(405, f"{request.method} is not allowed here; use {', '.join(allowed)}.",
                             Allow=", ".join(allowed))
            problem = None if public else _authenticate(request)
            if problem is not None:
                return problem
            try:
                with audit_log.via(_interface(request)):
                    return view(request, *args, **kwargs)
            except BadRequest as bad:
                return JsonResponse({"errors": bad.errors, **bad.extra}, status=400)
            except Http404 as missing:
                return error(404, str(missing) or "Not found.")
            except PermissionDenied as denied:
                return error(403, str(denied) or "Your role does not allow this.")

        return login_not_required(csrf_exempt(wrapper))

    return decorate


def request_data(request, *, files: bool = False):
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


def reject_unknown(data, allowed, files=None, allowed_files=()) -> None:
    """400 naming every field this endpoint does not take: a typo must not be silently ignored."""
    errors = {name: ["Unknown field."] for name in data if name not in allowed}
    errors.update({name: ["Unknown file field."] for name in files or {} if name not in allowed_files})
    if errors:
        accepted = ", ".join(sorted({*allowed, *allowed_files}))
        raise BadRequest({**errors, "__all__": [f"Fields accepted here: {accepted}."]})


JSON_TYPES = {
    "integer": ((int,), "a whole number"),
    "number": ((int, float), "a number"),
    "duration": ((int,), "seconds or a duration such as \"30s\" or \"5m\""),
    "string": ((), "a string"),
    "object": ((dict,), "an object"),
    "array": ((list,), "an array"),
    "boolean": ((bool,), "true or false"),
}


def check_types(data: dict, types: dict) -> None:
    """JSON values of the wrong type are errors, not coerced: true is not 1, [5] is not 5.

    Strings pass to the form fields, which parse them as the UI does ("30s", "7").
    """
    errors = {}
    for name, value in data.items():
        if name not in types or value is None or isinstance(value, str):
            continue
        accepted, label = JSON_TYPES[types[name]]
        if (isinstance(value, bool) and bool not in accepted) or not isinstance(value, accepted):
            errors[name] = [f"Expected {label}, got {json.dumps(value)}."]
    if errors:
        raise BadRequest(errors)


def form_errors(form) -> dict:
    return {field: [str(message) for message in messages] for field, messages in form.errors.items()}
