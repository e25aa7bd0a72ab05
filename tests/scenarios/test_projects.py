from django.urls import reverse

from scenarios.models import Membership, Project, Role


def test_it_makes_the_creator_maintainer_and_derives_the_slug(client, bob):
    client.force_login(bob)
    response = client.post(reverse("scenarios-project-create"), {"name": "Payments API", "slug": ""})
    project = Project.objects.get()
    assert project.slug == "payments-api"
    assert response["Location"] == project.get_absolute_url()
    assert Membership.objects.get(project=project).role == Role.MAINTAINER


def test_it_refuses_a_taken_slug(client, bob, project):
    client.force_login(bob)
    response = client.post(reverse("scenarios-project-create"), {"name": "Shop"})
    assert "The slug “shop” is taken" in response.content.decode()
    assert Project.objects.count() == 1


def test_it_shows_helpful_empty_states(client, alice, bob, project):
    client.force_login(bob)
    assert "No projects yet" in client.get(reverse("scenarios-project-list")).content.decode()
    client.force_login(alice)
    page = client.get(reverse("scenarios-project-detail", args=["shop"])).content.decode()
    assert "No scenarios yet — upload a locustfile" in page
    assert reverse("scenarios-create", args=["shop"]) in page


def test_it_logs_in_and_out_with_the_real_forms(client, alice):
    page = client.get(reverse("login")).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password"})
    assert response.status_code == 302
    assert client.get(reverse("scenarios-project-list")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("scenarios-project-list")).status_code == 302


def test_it_refuses_posts_without_a_csrf_token(alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = strict.post(reverse("scenarios-project-create"), {"name": "Sneaky"})
    assert response.status_code == 403
    assert not Project.objects.filter(name="Sneaky").exists()


def test_it_counts_every_member_and_scenario_on_the_project_list(client, alice, bob, project, bob_membership, scenario):
    for user in (alice, bob):
        client.force_login(user)
        page = client.get(reverse("scenarios-project-list")).content.decode()
        assert "1 scenario ·" in page and "2 members" in page
