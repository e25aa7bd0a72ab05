"""The GET filters of the audit log pages and their CSV export: one form, one function, both pages."""

from __future__ import annotations

import csv
import io
import json

from django import forms
from django.db.models import Q, QuerySet

from controlcenter.forms import DateRangeChecks, since_field, until_field

PAGE_SIZE = 50
# A cell starting with one of these is a formula to a spreadsheet: it is written with a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ["at", "actor", "interface", "project", "action", "subject", "details"]


class AuditFilterForm(DateRangeChecks, forms.Form):
    """Invalid fields are named in problems() and ignored; the valid ones still apply."""

    action = forms.ChoiceField(required=False, error_messages={"invalid_choice": "“%(value)s” is not an action "
                                                                                 "in this log."})
    actor = forms.CharField(required=False, max_length=150, label="User",
                            widget=forms.TextInput(attrs={"placeholder": "username"}))
    interface = forms.CharField(required=False, max_length=120,
                                widget=forms.TextInput(attrs={"placeholder": "ui, api, schedule, cli"}))
    project = forms.CharField(required=False, max_length=60, widget=forms.TextInput(attrs={"placeholder": "slug"}))
    since = since_field()
    until = until_field()

    def __init__(self, data, entries: QuerySet, *, with_project: bool):
        """`entries` are the ones this user may see: the action choices are those among them."""
        super().__init__(data)
        actions = entries.order_by("action").values_list("action", flat=True).distinct()
        self.fields["action"].choices = [("", "Any action"), *((action, action) for action in actions)]
        if not with_project:
            del self.fields["project"]

    def problems(self) -> list[str]:
        return [str(error) for errors in self.errors.values() for error in errors]

    def filtered(self) -> bool:
        return any(self.cleaned_data.get(name) for name in self.fields)


def filter_entries(entries: QuerySet, form: AuditFilterForm) -> QuerySet:
    """`entries` narrowed by the form's valid filters (call form.is_valid() first).

    The interface matches itself and what it prefixes: "api" finds "api" and every "api:<token name>".
    """
    data = form.cleaned_data
    if data.get("action"):
        entries = entries.filter(action=data["action"])
    if data.get("actor"):
        entries = entries.filter(actor_name__iexact=data["actor"].strip())
    if data.get("interface"):
        wanted = data["interface"].strip()
        entries = entries.filter(Q(interface__iexact=wanted) | Q(interface__istartswith=f"{wanted.rstrip(':')}:"))
    if data.get("project"):
        entries = entries.filter(project_slug=data["project"].strip())
    if data.get("since"):
        entries = entries.filter(at__date__gte=data["since"])
    if data.get("until"):
        entries = entries.filter(at__date__lte=data["until"])
    return entries


def details_text(details: dict) -> str:
    """The details as one line for the table, e.g. `name: API_TOKEN; changed: description, name`."""
    def plain(value) -> str:
        if isinstance(value, list):
            return ", ".join(plain(item) for item in value) or "—"
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True)
        return "—" if value in (None, "") else str(value)

    return "; ".join(f"{key}: {plain(value)}" for key, value in (details or {}).items())


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def to_csv(entries) -> str:
    """One row per entry, newest first as listed; details as JSON."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([_cell(value) for value in (
            entry.at.isoformat(), entry.actor_name or "system", entry.interface, entry.project_slug, entry.action,
            entry.subject, json.dumps(entry.details, sort_keys=True))])
    return out.getvalue()
