"""Maintainers manage members: add by username, change role, remove; a project keeps a maintainer."""

from django.urls import reverse

from scenarios.models import Membership, Role


def _members_url():
    return reverse("scenarios-members", args=["shop"])


def test_it_adds_a_member_by_username(client, alice, bob, project):
    client.force_login(alice)
    response = client.post(_members_url(), {"username": "bob", "role": "runner"})
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=bob).role == Role.RUNNER


def test_it_explains_unknown_users_and_duplicates(client, alice, bob, project, bob_membership):
    client.force_login(alice)
    assert "There is no user named “nobody”" in client.post(
        _members_url(), {"username": "nobody", "role": "viewer"}).content.decode()
    assert "already a member" in client.post(_members_url(), {"username": "bob", "role": "viewer"}).content.decode()
    assert project.memberships.count() == 2


def test_it_changes_a_role(client, alice, bob, project, bob_membership):
    client.force_login(alice)
    client.post(reverse("scenarios-member-role", args=["shop", bob_membership.pk]), {"role": "maintainer"})
    bob_membership.refresh_from_db()
    assert bob_membership.role == Role.MAINTAINER


def test_it_refuses_an_unknown_role(client, alice, bob, project, bob_membership):
    client.force_login(alice)
    response = client.post(reverse("scenarios-member-role", args=["shop", bob_membership.pk]), {"role": "god"},
                           follow=True)
    assert "Choose viewer, runner or maintainer" in response.content.decode()
    bob_membership.refresh_from_db()
    assert bob_membership.role == Role.VIEWER


def test_it_keeps_the_last_maintainer(client, alice, project):
    client.force_login(alice)
    own = project.memberships.get(user=alice)
    response = client.post(reverse("scenarios-member-remove", args=["shop", own.pk]), follow=True)
    assert "last maintainer" in response.content.decode()
    response = client.post(reverse("scenarios-member-role", args=["shop", own.pk]), {"role": "viewer"}, follow=True)
    assert "last maintainer" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.MAINTAINER


def test_it_lets_a_maintainer_step_down_once_another_exists(client, alice, bob, project, bob_membership):
    bob_membership.role = Role.MAINTAINER
    bob_membership.save()
    client.force_login(alice)
    own = project.memberships.get(user=alice)
    response = client.post(reverse("scenarios-member-remove", args=["shop", own.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("scenarios-project-list")
    assert not project.memberships.filter(user=alice).exists()
    assert client.get(reverse("scenarios-project-detail", args=["shop"])).status_code == 404


def test_it_removes_a_member_who_then_loses_access(client, alice, bob, project, bob_membership, scenario):
    client.force_login(alice)
    client.post(reverse("scenarios-member-remove", args=["shop", bob_membership.pk]))
    assert not Membership.objects.filter(pk=bob_membership.pk).exists()
    client.force_login(bob)
    assert client.get(scenario.get_absolute_url()).status_code == 404
