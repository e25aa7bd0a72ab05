"""Run labels: checked the same way everywhere, set from the run form and runscenario, frozen on the run,
shown on its page, in the history (and filtered by), in its reports and in `runscenario --json`."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit.models import AuditEntry
from runs import labels, reporting, reports, services
from runs.models import Run
from tests.runs.test_history import make_run
from workers import registry

HOST = "http://127.0.0.1:9"


# ---------------------------------------------------------------- validation


def test_it_keeps_string_labels_with_keys_sorted_and_values_stripped():
    assert labels.clean({"sut_version": " 1.4.2 ", "env": "staging", "app.commit-id": "abc123"}) == {
        "app.commit-id": "abc123", "env": "staging", "sut_version": "1.4.2"}
    assert list(labels.clean({"b": "2", "a": "1"})) == ["a", "b"]
    assert labels.clean(None) == {} and labels.clean({}) == {}


@pytest.mark.parametrize("given, message", [
    ({"Env": "x"}, "The label key “Env” is not valid: use lowercase letters, digits and _ . - only, starting with a "
                   "letter (e.g. sut_version, app.commit)."),
    ({"1st": "x"}, "The label key “1st” is not valid"),
    ({"env staging": "x"}, "The label key “env staging” is not valid"),
    ({"": "x"}, "A label needs a key, e.g. env=staging."),
    ({"k" * 65: "x"}, "is 65 characters long: at most 64."),
    ({"users": 50}, "The label users must be a string, not a number: write it in quotes, \"users\": \"50\"."),
    ({"ok": True}, "The label ok must be a string, not true or false: write it in quotes, \"ok\": \"true\"."),
    ({"ok": None}, "The label ok must be a string, not null"),
    ({"ok": ["a"]}, "The label ok must be a string, not a list or object"),
    ({"env": "  "}, "The label env has no value: write env=<value>, or leave the label out."),
    ({"note": "v" * 201}, "The value of the label note is 201 characters long: at most 200."),
    ({"note": "two\nlines"}, "The value of the label note holds a line break or control character"),
    ({f"k{i}": "v" for i in range(21)}, "A run takes at most 20 labels; 21 were given."),
    ("env=staging", "Give labels as an object of strings, e.g. {\"env\": \"staging\"}, not str."),
])
def test_it_refuses_a_bad_label_naming_it(given, message):
    with pytest.raises(labels.LabelError) as refused:
        labels.clean(given)
    assert any(message in sentence for sentence in refused.value.messages), refused.value.messages


def test_it_lists_every_bad_label_at_once_and_takes_the_limits_themselves():
    with pytest.raises(labels.LabelError) as refused:
        labels.clean({"Env": "x", "ok": "fine", "n": 3})
    assert len(refused.value.messages) == 2
    limits = {"k" * 64: "v" * 200, **{f"k{i}": "v" for i in range(19)}}
    assert labels.clean(limits) == dict(sorted(limits.items()))


def test_it_parses_key_value_lines_and_comma_separated_pairs():
    text = "sut_version=1.4.2, env=staging\r\n\n commit = abc123 \nnote=after the fix, before the release\n"
    assert labels.parse_text(text) == {"commit": "abc123", "env": "staging",
                                       "note": "after the fix, before the release", "sut_version": "1.4.2"}
    assert labels.parse_text("") == {} and labels.parse_text(None) == {}
    assert labels.parse_pairs(["env=staging", "env=prod"]) == {"env": "prod"}  # the last one wins
    with pytest.raises(labels.LabelError, match="“staging” is not a label: write key=value, e.g. env=staging."):
        labels.parse_text("staging")
    with pytest.raises(labels.LabelError, match="“=x” is not a label"):
        labels.parse_pairs(["=x"])
    assert labels.as_text({"env": "staging", "commit": "abc"}) == "commit=abc\nenv=staging"
    assert labels.parse_text(labels.as_text({"note": "a, b", "x": "1"})) == {"note": "a, b", "x": "1"}


def test_text_labels_name_every_bad_one_in_the_order_given():
    """Not only the first: a line that is not key=value does not hide the other lines' bad keys and values."""
    with pytest.raises(labels.LabelError) as refused:
        labels.parse_text("Build=7\nenv=staging\nteam\nowner=\nteam=core")
    assert refused.value.messages == [
        "The label key “Build” is not valid: use lowercase letters, digits and _ . - only, starting with a letter "
        "(e.g. sut_version, app.commit).",
        "“team” is not a label: write key=value, e.g. env=staging.",
        "The label owner has no value: write owner=<value>, or leave the label out.",
    ]


def test_a_comma_before_a_capitalised_key_starts_a_label_that_is_named():
    """"env=staging, Build=7" is two labels (as the history's filter box splits it), so Build is named,
    not kept inside env's value."""
    with pytest.raises(labels.LabelError) as refused:
        labels.parse_text("env=staging, Build=7, Team=core")
    assert [message.split(" is not valid")[0] for message in refused.value.messages] == [
        "The label key “Build”", "The label key “Team”"]
    assert labels.parse_text("note=after the fix, before the release") == {
        "note": "after the fix, before the release"}


def test_start_run_refuses_bad_labels_and_creates_nothing(scenario, alice):
    with pytest.raises(services.LabelsRefused) as refused:
        services.start_run(scenario, user=alice, params={"host": HOST}, labels={"Env": "x"})
    assert refused.value.field == "labels" and "“Env”" in refused.value.errors[0]
    assert not Run.objects.exists()
    run = services.start_run(scenario, user=alice, params={"host": HOST}, labels={"env": "staging"})
    assert Run.objects.get().labels == {"env": "staging"} == run.labels
    started = AuditEntry.objects.get(action="run.started")
    assert started.details["labels"] == {"env": "staging"}


# ---------------------------------------------------------------- the run form and the run page


def test_the_run_form_freezes_its_labels_on_the_run_and_its_page_shows_them(client, alice, scenario):
    client.force_login(alice)
    form = client.get(reverse("runs-create", args=[scenario.pk])).content.decode()
    assert 'name="labels"' in form and "one key=value per line or comma-separated" in form
    response = client.post(reverse("runs-create", args=[scenario.pk]), {
        "users": 3, "spawn_rate": 1, "duration": "30s", "host": HOST, "slots": 1,
        "labels": "sut_version=1.4.2, commit=abc123\nenv=staging"})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.labels == {"commit": "abc123", "env": "staging", "sut_version": "1.4.2"}

    page = client.get(run.get_absolute_url()).content.decode()
    header = page[page.index('id="run-labels"'):page.index('class="actions"')]
    assert header.index("commit=abc123") < header.index("env=staging") < header.index("sut_version=1.4.2")
    assert f'href="{reverse("runs-list", args=["shop"])}?label=env%3Dstaging"' in header


def test_the_run_form_names_a_bad_label_and_starts_nothing(client, alice, scenario):
    client.force_login(alice)
    response = client.post(reverse("runs-create", args=[scenario.pk]), {
        "users": 3, "spawn_rate": 1, "duration": "30s", "host": HOST, "slots": 1, "labels": "env=staging\nBuild=7"})
    assert response.status_code == 200 and not Run.objects.exists()
    assert response.context["form"].errors["labels"] == [
        "The label key “Build” is not valid: use lowercase letters, digits and _ . - only, starting with a letter "
        "(e.g. sut_version, app.commit)."]
    assert "The label key “Build” is not valid" in response.content.decode()


def test_the_run_form_names_each_bad_label(client, alice, scenario):
    client.force_login(alice)
    response = client.post(reverse("runs-create", args=[scenario.pk]), {
        "users": 3, "spawn_rate": 1, "duration": "30s", "host": HOST, "slots": 1,
        "labels": "Build=7, env=staging\nteam\nowner="})
    assert response.status_code == 200 and not Run.objects.exists()
    errors = list(response.context["form"].errors["labels"])
    assert len(errors) == 3
    assert errors[0].startswith("The label key “Build” is not valid")
    assert errors[1:] == ["“team” is not a label: write key=value, e.g. env=staging.",
                          "The label owner has no value: write owner=<value>, or leave the label out."]
    page = response.content.decode()
    assert "The label key “Build” is not valid" in page and "“team” is not a label" in page
    assert "The label owner has no value: write owner=&lt;value&gt;" in page


def test_a_run_without_labels_shows_no_label_row(client, alice, scenario):
    run = services.start_run(scenario, user=alice, params={"host": HOST})
    client.force_login(alice)
    assert run.labels == {} and 'id="run-labels"' not in client.get(run.get_absolute_url()).content.decode()


# ---------------------------------------------------------------- runscenario


def _runscenario(*args):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("runscenario", *args, stdout=out, stderr=err)
    return exit_info.value.code, out.getvalue(), err.getvalue()


def test_runscenario_labels_the_run_with_each_label_flag(redis, fake_workers, alice, scenario, tmp_path):
    """A collector is alive and two slots are online: the run is queued with its labels, then cancelled at once
    (--timeout 0) without waiting for it; --json carries the labels."""
    registry.collector_present(redis, "test", ttl=30)
    summary = tmp_path / "summary.json"
    code, out, err = _runscenario(str(scenario.pk), "--user", "alice", "--host", HOST, "--timeout", "0",
                                  "--label", "sut_version=1.4.2", "--label", "env=staging", "--label", "commit=abc",
                                  "--json", str(summary))
    run = Run.objects.get()
    assert run.trigger == Run.Trigger.CLI and run.status == Run.Status.CANCELLED and code == 2, err
    assert run.labels == {"commit": "abc", "env": "staging", "sut_version": "1.4.2"}
    assert "Labels: commit=abc env=staging sut_version=1.4.2" in out
    assert json.loads(summary.read_text())["labels"] == run.labels


def test_runscenario_refuses_a_bad_label_before_storing_anything(redis, fake_workers, alice, project, tmp_path):
    registry.collector_present(redis, "test", ttl=30)
    locustfile = tmp_path / "shop.py"
    locustfile.write_text("from locust import HttpUser, task\n\n\nclass U(HttpUser):\n    @task\n    def t(self):\n"
                          "        self.client.get('/')\n")
    code, _, err = _runscenario(str(locustfile), "--user", "alice", "--host", HOST, "--project", "shop",
                                "--label", "env=staging", "--label", "sut_version")
    assert code == 2 and "runscenario: --label 'sut_version': write NAME=VALUE, e.g. --label env=staging." in err
    code, _, err = _runscenario(str(locustfile), "--user", "alice", "--host", HOST, "--project", "shop",
                                "--label", "Env=staging")
    assert code == 2 and "runscenario: --label: The label key “Env” is not valid" in err
    assert not Run.objects.exists() and not project.scenarios.exists()


# ---------------------------------------------------------------- history


def test_the_history_filters_by_every_label_given_and_shows_removable_chips(client, alice, scenario):
    staging_new = make_run(scenario, alice)
    Run.objects.filter(pk=staging_new.pk).update(labels={"env": "staging", "sut_version": "1.4.3"})
    staging_old = make_run(scenario, alice)
    Run.objects.filter(pk=staging_old.pk).update(labels={"env": "staging", "sut_version": "1.4.2"})
    prod = make_run(scenario, alice)
    Run.objects.filter(pk=prod.pk).update(labels={"env": "prod", "sut_version": "1.4.2"})
    make_run(scenario, alice)  # no labels
    client.force_login(alice)
    url = reverse("runs-list", args=["shop"])

    def listed(query):
        return sorted(run.pk for run in client.get(url, query).context["page"].object_list)

    assert listed({"label": "env=staging"}) == sorted([staging_new.pk, staging_old.pk])
    assert listed({"label": ["env=staging", "sut_version=1.4.2"]}) == [staging_old.pk]  # AND
    assert listed({"label": ["sut_version = 1.4.2"]}) == sorted([staging_old.pk, prod.pk])
    assert listed({"label": "env=nowhere"}) == []

    response = client.get(url, {"label": ["env=staging", "sut_version=1.4.2"], "state": "finished"})
    page = response.content.decode()
    start = page.index('id="label-chips"')
    chips = page[start:page.index("</form>", start)]
    assert '<input type="hidden" name="label" value="env=staging">' in chips
    assert 'href="?label=sut_version%3D1.4.2&amp;state=finished"' in chips  # without env=staging
    assert 'href="?label=env%3Dstaging&amp;state=finished"' in chips
    assert "match the filters" in page
    # The filter offers the project's known labels; a badge in the list adds its label to the filters.
    assert '<option value="env=staging">' in page and '<option value="sut_version=1.4.2">' in page
    assert f'{url}?label=env%3Dstaging&amp;label=sut_version%3D1.4.2&amp;state=finished' in page


def test_the_history_names_a_garbage_label_filter_and_applies_the_rest(client, alice, scenario):
    staging = make_run(scenario, alice)
    Run.objects.filter(pk=staging.pk).update(labels={"env": "staging"})
    make_run(scenario, alice)
    client.force_login(alice)
    response = client.get(reverse("runs-list", args=["shop"]), {"label": ["staging", "Env=x", "env=staging", ""]})
    page = response.content.decode()
    assert "Some filters were ignored" in page
    assert "“staging” is not a label filter: write key=value, e.g. env=staging." in page
    assert "The label key “Env” is not valid" in page
    assert [run.pk for run in response.context["page"].object_list] == [staging.pk]


def test_the_history_says_when_no_run_has_labels_yet(client, alice, scenario):
    make_run(scenario, alice)
    client.force_login(alice)
    page = client.get(reverse("runs-list", args=["shop"])).content.decode()
    assert "No run of Shop has labels yet" in page and 'name="label"' in page


def test_another_projects_labels_are_not_offered(client, alice, scenario, charlie, charlies_project):
    from tests.conftest import store_scenario

    theirs = make_run(store_scenario(charlies_project, charlie, name="Theirs"), charlie)
    Run.objects.filter(pk=theirs.pk).update(labels={"customer": "secret-corp"})
    client.force_login(alice)
    page = client.get(reverse("runs-list", args=["shop"])).content.decode()
    assert "secret-corp" not in page and "customer" not in page


# ---------------------------------------------------------------- reports


def test_the_reports_carry_the_labels(client, alice, scenario):
    run = services.start_run(scenario, user=alice, params={"host": HOST},
                             labels={"sut_version": "1.4.2", "env": "staging"})
    assert reports.report_data(run)["labels"] == {"env": "staging", "sut_version": "1.4.2"}
    assert reporting.summary(run)["labels"] == {"env": "staging", "sut_version": "1.4.2"}
    html = reports.html_report(run)
    header = html[html.index('<header class="report-head">'):html.index("</header>")]
    assert '<span class="badge label" title="Label env">env=staging</span>' in header
    assert "sut_version=1.4.2" in header and "href=" not in header  # it opens offline: no links back
    client.force_login(alice)
    assert json.loads(client.get(reverse("runs-report-json", args=[run.pk])).content)["labels"] == {
        "env": "staging", "sut_version": "1.4.2"}


def test_a_label_filter_box_with_comma_separated_pairs_is_several_filters():
    filters, problems = labels.parse_filters(["env=staging, sut_version=1.1", "note=a, b"])
    assert filters == [("env", "staging"), ("sut_version", "1.1"), ("note", "a, b")] and problems == []


def test_the_compare_page_shows_each_runs_labels(client, alice, scenario):
    from runs.history import parameter_rows

    first, second = make_run(scenario), make_run(scenario)
    Run.objects.filter(pk=first.pk).update(labels={"sut_version": "1.0", "env": "staging"})
    Run.objects.filter(pk=second.pk).update(labels={"sut_version": "1.1", "env": "staging"})
    rows = {row["label"]: row for row in parameter_rows(list(Run.objects.filter(pk__in=[first.pk, second.pk])
                                                             .order_by("pk")))}
    assert rows["Labels"] == {"label": "Labels", "values": ["env=staging, sut_version=1.0",
                                                            "env=staging, sut_version=1.1"], "differs": True}
