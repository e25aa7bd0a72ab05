"""The OpenAPI document django-ninja generates: valid, every path documented resolves, every API URL is documented."""

import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from api import schema
from api import urls as api_urls
from api.app import UPLOAD_REQUEST_LIMIT

HTML_PAGES = {"api-docs", "api-docs-redirect", "api-tokens", "api-token-revoke", "api-not-found"}


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
    assert document["info"]["title"] and document["info"]["version"] and document["info"]["description"]
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
            assert method.upper() in match.func.api_methods, path  # behind api.app's method check
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
    public = [row for row in schema.operations(document, "https://sd.example.com") if row["public"]]
    assert public and all("Authorization" not in row["curl"] for row in public)  # the schema needs no token


def _operation(document, path, method):
    return document["paths"][path][method]


def _body_schema(document, path, method, media_type):
    reference = _operation(document, path, method)["requestBody"]["content"][media_type]["schema"]["$ref"]
    return document["components"]["schemas"][reference.rsplit("/", 1)[1]]


def test_what_the_hand_written_document_got_wrong_is_now_true(document):
    schemas = document["components"]["schemas"]
    # default_host may be "" (no host: the locustfile's user classes set one), not only a URI
    host = schemas["Scenario"]["properties"]["default_host"]
    assert host["type"] == "string" and {"maxLength": 0} in host["anyOf"] and {"format": "uri"} in host["anyOf"]
    # what the API requires is marked required
    assert set(_body_schema(document, "/api/projects/{slug}/scenarios/", "post", "multipart/form-data")[
        "required"]) == {"name", "locustfile"}
    assert _body_schema(document, "/api/scenarios/{scenario_id}/locustfile/", "post", "multipart/form-data")[
        "required"] == ["locustfile"]
    assert set(_body_schema(document, "/api/scenarios/{scenario_id}/criteria/", "post", "application/json")[
        "required"]) == {"metric", "value"}
    assert set(schemas["SecretInput"]["required"]) == {"name", "value"}
    assert set(schemas["Run"]["required"]) >= {"id", "status", "terminal", "verdict", "totals", "reports"}
    # uploads are files of a bounded size, the request body too (413 beyond)
    upload = _body_schema(document, "/api/projects/{slug}/scenarios/", "post", "multipart/form-data")
    locustfile = upload["properties"]["locustfile"]
    assert locustfile["format"] == "binary" and 0 < locustfile["maxLength"] < UPLOAD_REQUEST_LIMIT
    assert "413" in _operation(document, "/api/projects/{slug}/scenarios/", "post")["responses"]
    # unknown fields are refused, and so documented
    assert all(schemas[name]["additionalProperties"] is False for name in schemas if name.endswith("Input"))


def test_every_answer_is_declared_with_its_status_and_shape(document):
    statuses = {(path, method): set(operation["responses"]) for path, item in document["paths"].items()
                for method, operation in item.items()}
    assert statuses[("/api/projects/", "post")] == {"201", "400", "401"}
    assert statuses[("/api/scenarios/{scenario_id}/runs/", "post")] == {"201", "400", "401", "403", "404", "503"}
    assert statuses[("/api/runs/{run_id}/stop/", "post")] == {"202", "401", "403", "404", "409"}
    assert statuses[("/api/projects/{slug}/secrets/{name}/", "delete")] == {"204", "401", "403", "404"}
    assert statuses[("/api/projects/{slug}/secrets/", "post")] == {"200", "201", "400", "401", "403", "404"}
    stats = _operation(document, "/api/runs/{run_id}/stats.csv", "get")["responses"]["200"]
    assert list(stats["content"]) == ["text/csv"]
    errors = _operation(document, "/api/projects/", "post")["responses"]
    assert errors["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationErrors")
    assert errors["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert errors["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert not _operation(document, "/api/schema/", "get").get("security")  # public
    for path, item in document["paths"].items():
        for operation in item.values():
            assert all(parameter.get("example") is not None for parameter in operation["parameters"]), path


def test_the_api_is_behind_its_method_check_and_login_free():
    view = resolve("/api/projects/").func
    assert view.csrf_exempt and view.login_required is False
    assert view.api_methods == ("GET", "POST")
