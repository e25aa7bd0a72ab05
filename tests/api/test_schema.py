"""The OpenAPI document: valid JSON, every path documented resolves, every API URL is documented."""

import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from api import schema
from api import urls as api_urls
from api.auth import api_view

HTML_PAGES = {"api-docs", "api-tokens", "api-token-revoke", "api-not-found"}


def _example_path(path: str, item: dict, operation: dict) -> str:
    for parameter in item.get("parameters", []) + operation.get("parameters", []):
        path = path.replace(f"{{{parameter['name']}}}", str(parameter["example"]))
    return path


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.fixture
def document(client, db):
    response = client.get("/api/schema/")
    assert response.status_code == 200  # public: no token needed to read the description
    return json.loads(response.content)


def test_it_is_an_openapi_3_document(document):
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["servers"] == [{"url": "http://testserver"}]
    operation_ids = []
    for path, item in document["paths"].items():
        assert path.startswith("/api/")
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert method in schema.METHODS
            assert operation["responses"] and all(str(code).isdigit() for code in operation["responses"])
            operation_ids.append(operation["operationId"])
            names = {p["name"] for p in item.get("parameters", []) + operation.get("parameters", [])}
            assert names == set(schema_params(path)), path
    assert len(operation_ids) == len(set(operation_ids))
    for ref in _refs(document):
        section, kind, name = ref.removeprefix("#/").split("/")
        assert name in document[section][kind], ref
    assert set(document["components"]["securitySchemes"]) == {"token", "session"}


def schema_params(path):
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def test_every_documented_path_resolves_to_an_api_view_allowing_its_methods(document, client):
    for path, item in document["paths"].items():
        for method in (m for m in item if m in schema.METHODS):
            concrete = _example_path(path, item, item[method])
            match = resolve(concrete)
            assert match.url_name not in HTML_PAGES, path
            assert match.func.__module__ == "api.views"
            response = client.options(concrete)  # answered without a token: it reveals no object
            assert response.status_code == 200
            assert method.upper() in response["Allow"].split(", "), path


def _json_url_names():
    return {p.name for p in api_urls.urlpatterns if isinstance(p, URLPattern)} - HTML_PAGES


def test_every_api_url_is_documented(document):
    documented = set()
    for path, item in document["paths"].items():
        for method in (m for m in item if m in schema.METHODS):
            documented.add(resolve(_example_path(path, item, item[method])).url_name)
    assert documented == _json_url_names()


def test_the_api_is_mounted_under_api(db):
    [mounted] = [p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "api/"]
    assert mounted.urlconf_name is api_urls or getattr(mounted.urlconf_module, "__name__", "") == "api.urls"


def test_curl_examples_use_the_example_values():
    document = schema.document("https://sd.example.com")
    lines = {row["id"]: row["curl"] for row in schema.operations(document, "https://sd.example.com")}
    assert lines["start_run"] == (
        "curl -sS -X POST \\\n  -H \"Authorization: Bearer $SWARMDECK_TOKEN\" \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  -d '{\"users\": 50, \"spawn_rate\": 10, \"duration\": \"5m\", "
        "\"labels\": {\"sut_version\": \"1.4.2\", \"env\": \"staging\"}}' \\\n"
        "  https://sd.example.com/api/scenarios/1/runs/")
    assert lines["get_run"] == ("curl -sS -H \"Authorization: Bearer $SWARMDECK_TOKEN\" "
                                "https://sd.example.com/api/runs/1/")
    assert "-F locustfile=@locustfile.py" in lines["create_scenario"]
    assert lines["download_stats_csv"].endswith(" -OJ https://sd.example.com/api/runs/1/stats.csv")


def test_api_view_is_what_marks_views_csrf_exempt_and_login_free():
    view = api_view("GET")(lambda request: None)
    assert view.csrf_exempt and view.login_required is False
