"""How every JSON endpoint authenticates and reports errors.

A request with an `Authorization: Bearer <key>` (or `Token <key>`) header acts as the token's
user and is exempt from CSRF: a browser never sends that header by itself. Without the header a
logged-in browser session may use the API too, and then CSRF applies to writes as on any page.
Errors are JSON: {"error": "..."} for 401/403/404/405/409/413/503, {"errors": {field: [messages]}}
for 400. TokenAuth and SessionAuth are the two django-ninja authentication callbacks of api.api.
"""

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja.security.base import AuthBase

from api.models import ApiToken

SCHEMES = ("bearer", "token")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
NO_CREDENTIALS = "Authentication required: send `Authorization: Bearer <key>` with an API token."


class BadRequest(Exception):
    """Field errors for a 400 answer: {"field": ["message", ...]}."""

    def __init__(self, errors: dict, **extra):
        self.errors = errors
        self.extra = extra
        super().__init__(errors)


class ApiError(Exception):
    """An {"error": message} answer with this status (and headers)."""

    def __init__(self, status: int, message: str, **headers: str):
        self.status = status
        self.message = message
        self.headers = headers
        super().__init__(message)

    def response(self) -> JsonResponse:
        return error(self.status, self.message, **self.headers)


def error(status: int, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, WWW_Authenticate='Bearer realm="swarmdeck"')


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def _csrf_failure(request) -> str | None:
    """Why a session request's write fails Django's CSRF check, or None (as in Django REST framework)."""
    check = _CsrfCheck(lambda request: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


class TokenAuth(AuthBase):
    """`Authorization: Bearer <key>` (or `Token <key>`): the token's user. A bad header is a 401, whatever the
    session: a script must learn that its token is wrong."""

    scheme_name = "token"
    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_description = ("An API token from your user menu → API tokens, or `manage.py apitoken USERNAME`. "
                           "`Authorization: Token <key>` works too.")

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() not in SCHEMES or not key or " " in key:
            raise unauthorized("Send the token as `Authorization: Bearer <key>`.")
        token = ApiToken.authenticate(key)
        if token is None:
            raise unauthorized("This API token is not valid: it is unknown or was revoked.")
        request.user = token.user
        request.api_token = token
        return token


class SessionAuth(AuthBase):
    """A logged-in browser session (no Authorization header); its writes need Django's CSRF token."""

    scheme_name = "session"
    openapi_type = "apiKey"
    openapi_in = "cookie"
    openapi_name = "sessionid"
    openapi_description = "A logged-in browser session; writes then need Django's CSRF token."

    def __call__(self, request: HttpRequest) -> Any:
        if request.headers.get("Authorization") or not request.user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS:
            reason = _csrf_failure(request)
            if reason:
                raise ApiError(403, f"CSRF check failed ({reason}). Scripts should authenticate with an API token.")
        return request.user


def interface(request) -> str:
    """The audit log's interface of an API request: the token's name, or "api" for a browser session."""
    token = getattr(request, "api_token", None)
    return f"api:{token.name}" if token is not None else "api"


def form_errors(form) -> dict:
    return {field: [str(message) for message in messages] for field, messages in form.errors.items()}
