"""GET /metrics: the Prometheus scrape. Not behind a user session: metrics.access decides."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from metrics import access, prometheus


@login_not_required
@require_safe
@never_cache
def scrape(request: HttpRequest) -> HttpResponse:
    refused = access.refusal(request)
    if refused:
        response = HttpResponse(refused.message + "\n", status=refused.status, content_type="text/plain")
        if refused.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="swarmdeck-metrics"'
        return response
    body, content_type = prometheus.exposition(request.headers.get("Accept"))
    return HttpResponse(body, content_type=content_type)
