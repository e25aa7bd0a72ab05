"""Run report downloads: Locust's CSV files, the JSON document and the self-contained HTML report.

Login is enforced for every view by LoginRequiredMiddleware (controlcenter/settings.py);
access goes through get_run_for_user, so other projects' runs answer 404 and viewers may
download. A running run downloads what has been collected so far.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse

from runs import reports
from runs.access import get_run_for_user


def _attachment(content: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content.encode("utf-8"), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # The figures of a running run change every second: never serve a stale copy.
    response["Cache-Control"] = "private, no-store"
    return response


def run_csv(request, run_id, kind):
    """One of Locust's four `--csv` files: kind is stats, stats_history, failures or exceptions."""
    render = reports.CSV_FILES.get(kind)
    if render is None:
        raise Http404("No such report.")
    run, _ = get_run_for_user(request, run_id)
    return _attachment(render(run), reports.csv_filename(run, kind), "text/csv; charset=utf-8")


def run_json(request, run_id):
    run, _ = get_run_for_user(request, run_id)
    document = json.dumps(reports.report_data(run), cls=DjangoJSONEncoder, indent=2)
    return _attachment(document, reports.json_filename(run), "application/json")


def run_html(request, run_id):
    run, _ = get_run_for_user(request, run_id)
    return _attachment(reports.html_report(run), reports.html_filename(run), "text/html; charset=utf-8")
