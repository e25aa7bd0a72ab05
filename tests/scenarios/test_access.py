"""Every project URL, every method, three personas: alice (maintainer), bob (lower role),
charlie (outsider with a project of his own). Outsiders get 404, lower roles 403."""

import pytest
from django.urls import reverse

from scenarios.models import Membership, Role
from tests.conftest import upload
from tests.locustfiles import SHOP_V2

# (name, url kwargs builder, method, minimum role)
ROUTES = [
    ("scenarios-project-detail", lambda o: {"slug": "shop"}, "get", Role.VIEWER),
    ("scenarios-project-edit", lambda o: {"slug": "shop"}, "get", Role.MAINTAINER),
    ("scenarios-project-edit", lambda o: {"slug": "shop"}, "post", Role.MAINTAINER),
    ("scenarios-members", lambda o: {"slug": "shop"}, "get", Role.VIEWER),
    ("scenarios-members", lambda o: {"slug": "shop"}, "post", Role.MAINTAINER),
    ("scenarios-member-role", lambda o: {"slug": "shop", "member_id": o["member"].pk}, "post", Role.MAINTAINER),
    ("scenarios-member-remove", lambda o: {"slug": "shop", "member_id": o["member"].pk}, "post", Role.MAINTAINER),
    ("scenarios-create", lambda o: {"slug": "shop"}, "get", Role.MAINTAINER),
    ("scenarios-create", lambda o: {"slug": "shop"}, "post", Role.MAINTAINER),
    ("scenarios-detail", lambda o: {"scenario_id": o["scenario"].pk}, "get", Role.VIEWER),
    ("scenarios-edit", lambda o: {"scenario_id": o["scenario"].pk}, "get", Role.MAINTAINER),
    ("scenarios-edit", lambda o: {"scenario_id": o["scenario"].pk}, "post", Role.MAINTAINER),
    ("scenarios-delete", lambda o: {"scenario_id": o["scenario"].pk}, "get", Role.MAINTAINER),
    ("scenarios-delete", lambda o: {"scenario_id": o["scenario"].pk}, "post", Role.MAINTAINER),
    ("scenarios-upload", lambda o: {"scenario_id": o["scenario"].pk}, "get", Role.MAINTAINER),
    ("scenarios-upload", lambda o: {"scenario_id": o["scenario"].pk}, "post", Role.MAINTAINER),
    ("scenarios-version", lambda o: {"scenario_id": o["scenario"].pk, "number": 1}, "get", Role.VIEWER),
    ("scenarios-version-download", lambda o: {"scenario_id": o["scenario"].pk, "number": 1}, "get", Role.VIEWER),
    ("audit-project", lambda o: {"slug": "shop"}, "get", Role.MAINTAINER),
    ("audit-project-csv", lambda o: {"slug": "shop"}, "get", Role.MAINTAINER),
]
ROUTE_IDS = [f"{method.upper()} {name}" for name, _, method, _ in ROUTES]


def _post_data(name):
    """A valid body for each POST, so a 200/302 proves access and a 403/404 proves refusal."""
    if name == "scenarios-upload":
        return {"locustfile": upload("locustfile.py", SHOP_V2)}
    if name == "scenarios-create":
        return {"name": "New", "locustfile": upload("locustfile.py", SHOP_V2), "default_users": 5,
                "default_spawn_rate": 1, "default_duration": "30s", "default_slots": 1}
    if name == "scenarios-edit":
        return {"name": "Renamed", "default_users": 5, "default_spawn_rate": 1, "default_duration": "30s",
                "default_slots": 1}
    if name == "scenarios-project-edit":
        return {"name": "Shop", "slug": "shop"}
    if name == "scenarios-members":
        return {"username": "dave", "role": "viewer"}
    if name == "scenarios-member-role":
        return {"role": "runner"}
    return {}


@pytest.fixture
def objects(project, scenario, bob_membership, charlies_project, django_user_model):
    django_user_model.objects.create_user("dave")
    # A member other than the requester, so role changes and removals have a target.
    erin = django_user_model.objects.create_user("erin")
    member = Membership.objects.create(project=project, user=erin, role=Role.VIEWER)
    return {"scenario": scenario, "member": member}


def _request(client, name, kwargs, method):
    url = reverse(name, kwargs=kwargs)
    if method == "get":
        return client.get(url)
    return client.post(url, _post_data(name))


@pytest.mark.parametrize("name,kwargs,method,role", ROUTES, ids=ROUTE_IDS)
def test_it_answers_404_to_an_outsider(client, charlie, objects, name, kwargs, method, role):
    client.force_login(charlie)
    response = _request(client, name, kwargs(objects), method)
    assert response.status_code == 404
    assert b"Shop" not in response.content


@pytest.mark.parametrize("name,kwargs,method,role", ROUTES, ids=ROUTE_IDS)
def test_it_sends_anonymous_users_to_login(client, objects, name, kwargs, method, role):
    response = _request(client, name, kwargs(objects), method)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("teammate_role", [Role.VIEWER, Role.RUNNER])
@pytest.mark.parametrize("name,kwargs,method,role", ROUTES, ids=ROUTE_IDS)
def test_it_lets_a_teammate_do_what_their_role_allows(
    client, bob, bob_membership, objects, name, kwargs, method, role, teammate_role
):
    bob_membership.role = teammate_role
    bob_membership.save()
    client.force_login(bob)
    response = _request(client, name, kwargs(objects), method)
    if role == Role.MAINTAINER:
        assert response.status_code == 403
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("name,kwargs,method,role", ROUTES, ids=ROUTE_IDS)
def test_it_lets_the_maintainer_do_everything(client, alice, objects, name, kwargs, method, role):
    client.force_login(alice)
    response = _request(client, name, kwargs(objects), method)
    assert response.status_code in (200, 302), response.content[:500]
    if method == "post":
        assert response.status_code == 302  # the valid body was accepted


def test_it_lists_only_the_users_own_projects(client, charlie, project, charlies_project):
    client.force_login(charlie)
    response = client.get(reverse("scenarios-project-list"))
    assert b"Charlie&#x27;s" in response.content
    assert b"Shop" not in response.content


def test_it_hides_other_projects_from_the_navigation(client, charlie, project, charlies_project, scenario):
    client.force_login(charlie)
    response = client.get(reverse("scenarios-project-detail", args=["charlies"]))
    assert response.status_code == 200
    assert b"/p/shop/" not in response.content
    assert b"Checkout" not in response.content


def test_it_does_not_let_a_maintainer_touch_members_of_another_project(client, alice, project, charlies_project):
    """A membership id from project B addressed through project A's URL is not found."""
    charlies_own = charlies_project.memberships.get()
    client.force_login(alice)
    response = client.post(reverse("scenarios-member-remove", args=["shop", charlies_own.pk]))
    assert response.status_code == 404
    assert Membership.objects.filter(pk=charlies_own.pk).exists()


def test_it_answers_health_checks_without_login(client, db):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.content == b"ok\n"


def test_it_serves_the_admin_only_to_staff(client, alice):
    client.force_login(alice)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
