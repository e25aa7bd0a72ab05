"""Labels through the API: `labels: {...}` when starting a run, in every run payload, 400 on `labels`."""

import pytest

from api import schema
from runs.models import Run

HOST = "http://127.0.0.1:9"


def test_it_starts_a_run_with_labels_and_answers_them_everywhere(as_alice, scenario):
    response = as_alice.post_json(f"/api/scenarios/{scenario.pk}/runs/", {
        "host": HOST, "labels": {"sut_version": "1.4.2", "commit": "abc123", "env": "staging"}})
    assert response.status_code == 201, response.json()
    expected = {"commit": "abc123", "env": "staging", "sut_version": "1.4.2"}
    assert response.json()["labels"] == expected
    run = Run.objects.get()
    assert run.labels == expected and run.trigger == Run.Trigger.API
    detail = as_alice.get(f"/api/runs/{run.pk}/").json()
    assert detail["labels"] == expected and list(detail["labels"]) == sorted(expected)
    assert as_alice.get(f"/api/scenarios/{scenario.pk}/runs/").json()["runs"][0]["labels"] == expected
    report = as_alice.get(f"/api/runs/{run.pk}/report.json")
    assert b'"sut_version": "1.4.2"' in report.content


def test_a_run_without_labels_answers_an_empty_object(as_alice, scenario):
    response = as_alice.post_json(f"/api/scenarios/{scenario.pk}/runs/", {"host": HOST})
    assert response.status_code == 201 and response.json()["labels"] == {}
    assert as_alice.get(f"/api/runs/{Run.objects.get().pk}/").json()["labels"] == {}


@pytest.mark.parametrize("labels, message", [
    ({"Env": "staging"}, "The label key “Env” is not valid"),
    ({"build": 7}, "The label build must be a string, not a number: write it in quotes, \"build\": \"7\"."),
    ({"env": ""}, "The label env has no value"),
    ({f"k{i}": "v" for i in range(21)}, "A run takes at most 20 labels; 21 were given."),
    ("env=staging", "Expected an object of strings, e.g. {\"env\": \"staging\"}, got \"env=staging\"."),
    (["env", "staging"], "Expected an object, got [\"env\", \"staging\"]."),
])
def test_it_answers_400_on_labels_naming_the_bad_one(as_alice, scenario, labels, message):
    response = as_alice.post_json(f"/api/scenarios/{scenario.pk}/runs/", {"host": HOST, "labels": labels})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["labels"] and any(message in sentence for sentence in errors["labels"]), errors
    assert not Run.objects.exists()


def test_it_names_bad_labels_beside_the_other_fields_errors(as_alice, scenario):
    response = as_alice.post_json(f"/api/scenarios/{scenario.pk}/runs/", {
        "host": HOST, "users": 0, "labels": {"Env": "x", "ok": "fine", "n": 1}})
    errors = response.json()["errors"]
    assert response.status_code == 400 and set(errors) == {"users", "labels"} and len(errors["labels"]) == 2


def test_form_data_takes_labels_as_json_text_or_key_value_lines(as_alice, scenario):
    assert as_alice.post(f"/api/scenarios/{scenario.pk}/runs/", {
        "host": HOST, "labels": '{"env": "staging"}'}).status_code == 201
    assert as_alice.post(f"/api/scenarios/{scenario.pk}/runs/", {
        "host": HOST, "labels": "env=prod\nsut_version=2.0"}).status_code == 201
    assert [run.labels for run in Run.objects.order_by("pk")] == [{"env": "staging"},
                                                                  {"env": "prod", "sut_version": "2.0"}]
    response = as_alice.post(f"/api/scenarios/{scenario.pk}/runs/", {"host": HOST, "labels": "staging"})
    assert response.status_code == 400 and response.json()["errors"]["labels"] == [
        "“staging” is not a label: write key=value, e.g. env=staging."]


def test_the_openapi_document_describes_labels_in_and_out():
    document = schema.document()
    schemas = document["components"]["schemas"]
    [given] = [option for option in schemas["RunOverrides"]["properties"]["labels"]["anyOf"]
               if option["type"] == "object"]
    assert given["maxProperties"] == 20
    assert given["propertyNames"] == {"pattern": "^[a-z][a-z0-9_.-]*$", "maxLength": 64}
    assert given["additionalProperties"] == {"type": "string", "minLength": 1, "maxLength": 200}
    assert schemas["RunBrief"]["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert schemas["Run"]["properties"]["labels"]["type"] == "object"
    body = document["paths"]["/api/scenarios/{scenario_id}/runs/"]["post"]["requestBody"]["content"]
    assert body["application/json"]["example"]["labels"] == {"sut_version": "1.4.2", "env": "staging"}
