"""A bundle's requirements.txt at upload: listed by the analysis, refused with the line when a
worker would not install it (pip options, URLs, paths, another version of Swarmdeck's packages)."""

import html

import pytest
from django.urls import reverse

from scenarios.models import Scenario
from tests.conftest import upload
from tests.locustfiles import SHOP, zip_bundle


def _create(client, requirements: bytes):
    bundle = zip_bundle({"locustfile.py": SHOP, "requirements.txt": requirements})
    return client.post(reverse("scenarios-create", args=["shop"]), {
        "name": "Checkout", "locustfile": upload("shop.zip", bundle), "default_host": "http://127.0.0.1:8089",
        "default_users": 2, "default_spawn_rate": 1, "default_duration": "1m", "default_slots": 1})


def test_the_analysis_lists_the_requirements(client, alice, project):
    client.force_login(alice)
    response = _create(client, b"# scraping\npyquery==2.0.1\nFaker>=20  # names\n")
    assert response.status_code == 302
    version = Scenario.objects.get().versions.get()
    assert version.findings["requirements"] == ["pyquery==2.0.1", "Faker>=20"]
    page = " ".join(client.get(Scenario.objects.get().get_absolute_url()).content.decode().split())
    assert "Requirements" in page and "pyquery==2.0.1" in page


@pytest.mark.parametrize("line, says", [
    (b"--index-url https://example.invalid/simple", "pip options"),
    (b"-e git+https://example.invalid/x.git#egg=x", "pip options"),
    (b"pkg @ https://example.invalid/pkg.whl", "URLs and direct references"),
    (b"./vendor/pkg", "local paths"),
    (b"locust==1.0", "would replace Swarmdeck's locust"),
])
def test_it_refuses_what_a_worker_would_not_install(client, alice, project, line, says):
    client.force_login(alice)
    response = _create(client, b"requests\n" + line + b"\n")
    assert response.status_code == 200 and not Scenario.objects.exists()
    page = html.unescape(" ".join(response.content.decode().split()))
    assert "requirements.txt line 2" in page and says in page
