"""Who sees which audit entries: a project's maintainers its own, staff everything, nobody else anything.

alice maintains shop, bob is her teammate with a lower role, charlie an outsider who maintains
his own project. Every page is checked for each, with the CSV export alongside."""

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from scenarios.models import Role

PROJECT_PAGES = ["audit-project", "audit-project-csv"]
SITE_PAGES = ["audit-site", "audit-site-csv"]


@pytest.mark.parametrize("name", PROJECT_PAGES)
def test_it_answers_404_to_an_outsider_and_shows_nothing_of_the_project(client, charlie, charlies_entries,
                                                                          shop_entries, name):
    client.force_login(charlie)
    response = client.get(reverse(name, args=["shop"]))
    assert response.status_code == 404
    assert b"Shop-only" not in response.content and b"SHOP_ONLY" not in response.content


@pytest.mark.parametrize("name", PROJECT_PAGES)
def test_an_outsider_sees_only_his_own_projects_entries_in_his_log(client, charlie, charlies_entries,
                                                                     shop_entries, name):
    client.force_login(charlie)
    response = client.get(reverse(name, args=["charlies"]), {"project": "shop"})  # no such filter here
    assert response.status_code == 200
    assert b"Charlie-only-browse" in response.content
    assert b"Shop-only" not in response.content and b"SHOP_ONLY" not in response.content


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RUNNER])
@pytest.mark.parametrize("name", PROJECT_PAGES)
def test_a_teammate_below_maintainer_is_refused_as_on_other_maintainer_pages(client, bob, bob_membership,
                                                                               shop_entries, role, name):
    bob_membership.role = role
    bob_membership.save()
    client.force_login(bob)
    response = client.get(reverse(name, args=["shop"]))
    assert response.status_code == 403
    assert b"Shop-only" not in response.content
    assert client.get(reverse("scenarios-project-edit", args=["shop"])).status_code == 403  # the same rule


@pytest.mark.parametrize("name", PROJECT_PAGES)
def test_the_maintainer_sees_her_projects_entries_only(client, alice, shop_entries, charlies_entries, name):
    client.force_login(alice)
    response = client.get(reverse(name, args=["shop"]))
    assert response.status_code == 200
    assert b"Shop-only-checkout" in response.content and b"SHOP_ONLY_TOKEN" in response.content
    assert b"Charlie-only" not in response.content


@pytest.mark.parametrize("name", PROJECT_PAGES)
def test_anonymous_users_are_sent_to_login(client, shop_entries, name):
    response = client.get(reverse(name, args=["shop"]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", SITE_PAGES)
def test_the_site_wide_log_is_404_for_everyone_but_staff(client, alice, charlie, shop_entries, charlies_entries,
                                                         name):
    for user in (alice, charlie):
        client.force_login(user)
        response = client.get(reverse(name))
        assert response.status_code == 404
        assert b"Shop-only" not in response.content and b"Charlie-only" not in response.content


@pytest.mark.parametrize("name", SITE_PAGES)
def test_staff_see_every_projects_entries(client, django_user_model, shop_entries, charlies_entries, name):
    admin = django_user_model.objects.create_user("root", is_staff=True)
    client.force_login(admin)
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert b"Shop-only-checkout" in response.content and b"Charlie-only-browse" in response.content


def test_staff_who_are_not_members_read_a_project_through_the_site_wide_log(client, django_user_model,
                                                                            shop_entries, charlies_entries):
    admin = django_user_model.objects.create_user("root", is_staff=True)
    client.force_login(admin)
    assert client.get(reverse("audit-project", args=["shop"])).status_code == 404  # not a member: as everywhere
    response = client.get(reverse("audit-site"), {"project": "shop"})
    assert b"Shop-only-checkout" in response.content and b"Charlie-only" not in response.content


def test_the_query_set_scopes_entries_to_the_projects_a_user_maintains(alice, bob, bob_membership, charlie,
                                                                        shop_entries, charlies_entries):
    assert set(AuditEntry.objects.for_user(alice).values_list("project__slug", flat=True)) == {"shop"}
    assert set(AuditEntry.objects.for_user(charlie).values_list("project__slug", flat=True)) == {"charlies"}
    assert not AuditEntry.objects.for_user(bob).exists()  # a viewer of shop
    bob_membership.role = Role.MAINTAINER
    bob_membership.save()
    assert set(AuditEntry.objects.for_user(bob).values_list("project__slug", flat=True)) == {"shop"}


def test_the_links_show_only_to_those_who_may_open_them(client, alice, bob, bob_membership, django_user_model):
    audit_url = f'href="{reverse("audit-project", args=["shop"])}"'.encode()
    site_url = f'href="{reverse("audit-site")}"'.encode()
    client.force_login(alice)
    page = client.get(reverse("scenarios-project-detail", args=["shop"])).content
    assert audit_url in page and site_url not in page
    client.force_login(bob)
    assert audit_url not in client.get(reverse("scenarios-project-detail", args=["shop"])).content
    admin = django_user_model.objects.create_user("root", is_staff=True)
    client.force_login(admin)
    assert site_url in client.get(reverse("scenarios-project-list")).content
