"""The audit log pages: filters, pagination, the empty state and the CSV export with the same filters."""

import csv
import datetime as dt
import io
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.filters import PAGE_SIZE
from audit.log import record, via
from audit.models import AuditEntry


@pytest.fixture
def log(project, alice, bob, bob_membership):
    """Entries of shop from three interfaces and two users; the oldest one ten days ago."""
    AuditEntry.objects.all().delete()
    with via("ui"):
        record("secret.set", actor=alice, project=project, subject="secret API_TOKEN", details={"name": "API_TOKEN"})
    with via("api:ci-pipeline"):
        record("run.started", actor=bob, project=project, subject="run #7 of Checkout", details={"run": 7})
    with via("schedule:3"):
        record("run.started", project=project, subject="run #8 of Checkout", details={"run": 8})
    with via("api"):
        record("scenario.edited", actor=alice, project=project, subject="scenario =HYPERLINK(\"x\")",
               details={"changed": ["name"]})
    AuditEntry.objects.filter(subject="secret API_TOKEN").update(at=timezone.now() - dt.timedelta(days=10))


def subjects(response) -> list[str]:
    return [entry.subject for entry, _ in response.context["rows"]]


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.fixture
def maintainer(client, alice):
    client.force_login(alice)
    return client


def test_it_lists_the_entries_newest_first_with_who_and_from_where(maintainer, log):
    response = maintainer.get(reverse("audit-project", args=["shop"]))
    assert subjects(response) == ["scenario =HYPERLINK(\"x\")", "run #8 of Checkout", "run #7 of Checkout",
                                  "secret API_TOKEN"]
    page = response.content.decode()
    assert "api:ci-pipeline" in page and "schedule:3" in page and "<strong>bob</strong>" in page
    assert "name: API_TOKEN" in page  # the details, as one line


@pytest.mark.parametrize("query,expected", [
    ({"action": "run.started"}, ["run #8 of Checkout", "run #7 of Checkout"]),
    ({"actor": "BOB"}, ["run #7 of Checkout"]),
    ({"interface": "api"}, ["scenario =HYPERLINK(\"x\")", "run #7 of Checkout"]),  # "api" and every api:<token>
    ({"interface": "api:ci-pipeline"}, ["run #7 of Checkout"]),
    ({"interface": "API"}, ["scenario =HYPERLINK(\"x\")", "run #7 of Checkout"]),  # as the actor: any case
    ({"interface": "schedule"}, ["run #8 of Checkout"]),
    ({"actor": "alice", "action": "scenario.edited"}, ["scenario =HYPERLINK(\"x\")"]),
])
def test_it_filters_by_action_actor_and_interface(maintainer, log, query, expected):
    response = maintainer.get(reverse("audit-project", args=["shop"]), query)
    assert subjects(response) == expected
    assert response.context["filtered"]


def test_it_filters_by_date_range(maintainer, log):
    today = timezone.localdate()
    old = (today - dt.timedelta(days=10)).isoformat()
    url = reverse("audit-project", args=["shop"])
    assert subjects(maintainer.get(url, {"until": old})) == ["secret API_TOKEN"]
    assert "secret API_TOKEN" not in subjects(maintainer.get(url, {"since": today.isoformat()}))
    assert len(subjects(maintainer.get(url, {"since": old, "until": today.isoformat()}))) == 4


def test_it_names_a_bad_filter_and_applies_the_others(maintainer, log):
    response = maintainer.get(reverse("audit-project", args=["shop"]), {"since": "yesterday", "actor": "bob",
                                                                        "action": "nope"})
    assert subjects(response) == ["run #7 of Checkout"]
    page = response.content.decode()
    assert "Write the start date as YYYY-MM-DD." in page and "“nope” is not an action in this log." in page


def test_it_exports_the_filtered_entries_as_csv(maintainer, log):
    response = maintainer.get(reverse("audit-project-csv", args=["shop"]), {"action": "run.started"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-shop-')
    rows = csv_rows(response)
    assert [(r["actor"], r["interface"], r["project"], r["action"], r["subject"]) for r in rows] == [
        ("system", "schedule:3", "shop", "run.started", "run #8 of Checkout"),
        ("bob", "api:ci-pipeline", "shop", "run.started", "run #7 of Checkout")]
    assert json.loads(rows[1]["details"]) == {"run": 7}
    assert dt.datetime.fromisoformat(rows[0]["at"]) > dt.datetime.fromisoformat(rows[1]["at"])


def test_the_csv_export_cannot_smuggle_a_spreadsheet_formula(maintainer, project, django_user_model, log):
    """Usernames may start with "-" or "@", and a subject with anything: a spreadsheet must not run them."""
    evil = django_user_model.objects.create_user("@SUM(1+1)")
    record("member.added", actor=evil, project=project, subject="=HYPERLINK(\"http://x\")")
    [row] = csv_rows(maintainer.get(reverse("audit-project-csv", args=["shop"]), {"action": "member.added"}))
    assert (row["actor"], row["subject"]) == ("'@SUM(1+1)", "'=HYPERLINK(\"http://x\")")


def test_the_page_links_to_the_export_with_its_filters(maintainer, log):
    response = maintainer.get(reverse("audit-project", args=["shop"]), {"actor": "bob", "page": "1"})
    assert response.context["csv_url"] == reverse("audit-project-csv", args=["shop"]) + "?actor=bob"


def test_it_paginates(maintainer, project, alice):
    AuditEntry.objects.all().delete()
    for number in range(PAGE_SIZE + 3):
        record("run.started", actor=alice, project=project, subject=f"run #{number}")
    url = reverse("audit-project", args=["shop"])
    first = maintainer.get(url)
    assert len(first.context["rows"]) == PAGE_SIZE and "Page 1 of 2" in first.content.decode()
    second = maintainer.get(url, {"page": 2})
    assert subjects(second) == ["run #2", "run #1", "run #0"]
    assert len(csv_rows(maintainer.get(reverse("audit-project-csv", args=["shop"])))) == PAGE_SIZE + 3  # all


def test_an_empty_log_says_what_will_appear_and_an_empty_filter_says_how_to_widen_it(maintainer, project):
    AuditEntry.objects.all().delete()
    page = maintainer.get(reverse("audit-project", args=["shop"])).content.decode()
    assert "Nothing recorded yet" in page and "secrets, schedules and webhooks" in page
    record("project.edited", project=project, subject="project Shop")
    page = maintainer.get(reverse("audit-project", args=["shop"]), {"actor": "nobody"}).content.decode()
    assert "No entries match these filters" in page and "Nothing recorded yet" not in page


def test_staff_filter_the_site_wide_log_by_project(client, django_user_model, log, charlies_project, charlie):
    record("project.edited", actor=charlie, project=charlies_project, subject="project Charlie's")
    admin = django_user_model.objects.create_user("root", is_staff=True)
    client.force_login(admin)
    everything = client.get(reverse("audit-site"))
    assert len(everything.context["rows"]) == 6  # shop's four, charlie's creation and edit
    rows = csv_rows(client.get(reverse("audit-site-csv"), {"project": "charlies"}))
    assert [(r["project"], r["action"]) for r in rows] == [("charlies", "project.edited"),
                                                           ("charlies", "project.created")]
