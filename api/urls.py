"""The /api/ URLs: the pages for people, then the JSON operations of api.views on django-ninja, then a JSON 404."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from api import pages, views
from api.app import create_api, url_patterns

api = create_api(views.router)

urlpatterns = [
    path("", pages.docs, name="api-docs"),
    path("docs/", RedirectView.as_view(pattern_name="api-docs"), name="api-docs-redirect"),  # where others keep theirs
    path("tokens/", pages.token_list, name="api-tokens"),
    path("tokens/<int:token_id>/revoke/", pages.token_revoke, name="api-token-revoke"),
    *url_patterns(api),
    re_path(r"^(?P<rest>.+)$", login_not_required(csrf_exempt(views.not_found)), name="api-not-found"),
]
