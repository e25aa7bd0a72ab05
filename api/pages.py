"""Pages of the API for people: the docs page and the API tokens page (login required, as every page)."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from api import schema
from api.models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. “GitLab CI of shop”")


def docs(request):
    """Human documentation rendered from the OpenAPI document, with curl lines for this server."""
    base = request.build_absolute_uri("/").rstrip("/")
    document = schema.document(base)
    return render(request, "api/docs.html", {
        "document": document, "base": base, "operations": schema.operations(document, base),
    })


def token_list(request):
    """The user's tokens; POST creates one and shows its key this once."""
    form = TokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        token, new_key = ApiToken.issue(request.user, form.cleaned_data["name"])
        form = TokenForm()
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "api/tokens.html", {"tokens": tokens, "form": form, "new_key": new_key},
                  status=201 if new_key else 200)


@require_POST
def token_revoke(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    if token.revoke():
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) revoked: it no longer works.")
    return redirect("api-tokens")
