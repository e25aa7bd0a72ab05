"""The Allowed targets pages: members read, maintainers propose and delete, admins decide; every
change in the audit log. Three personas: alice (maintainer of shop), bob (viewer), charlie (outsider)."""

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from targets.models import AllowedTarget
from tests.targets.conftest import allow


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_user("root", password="root-password", is_staff=True)


@pytest.fixture
def entry(project):
    return allow(project, "api.shop.test", status=AllowedTarget.Status.PROPOSED)


def actions():
    return list(AuditEntry.objects.filter(action__startswith="target.").order_by("id")
                .values_list("action", "actor_name", "project_slug", "subject"))


def test_it_lets_a_maintainer_propose_a_target(client, alice, project):
    client.force_login(alice)
    response = client.post(reverse("targets-list", args=["shop"]),
                           {"pattern": "https://API.shop.test:8443/checkout", "note": "the shop's API"})
    assert response.status_code == 302
    entry = AllowedTarget.objects.get()
    assert (entry.pattern, entry.kind, entry.status, entry.proposed_by, entry.note) == (
        "api.shop.test:8443", "host", "proposed", alice, "the shop's API")
    assert actions() == [("target.proposed", "alice", "shop", "allowed target api.shop.test:8443")]
    page = client.get(reverse("targets-list", args=["shop"])).content.decode()
    assert "api.shop.test:8443" in page and "waiting for an admin" in page
    assert f"/.well-known/swarmdeck-{entry.token}.txt" in page and entry.token in page  # the proof instructions


def test_it_says_why_a_pattern_is_refused(client, alice, project, entry):
    client.force_login(alice)
    url = reverse("targets-list", args=["shop"])
    assert "would allow a whole top-level domain" in client.post(url, {"pattern": "*.test"}).content.decode()
    assert "already on the list (proposed)" in client.post(url, {"pattern": "API.shop.test"}).content.decode()
    assert AllowedTarget.objects.count() == 1


def test_it_proposes_a_rejected_pattern_again_with_a_new_token(client, alice, project, entry, admin_user):
    entry.mark(AllowedTarget.Status.REJECTED, by=admin_user, note="not yours")
    client.force_login(alice)
    client.post(reverse("targets-list", args=["shop"]), {"pattern": "api.shop.test"})
    again = AllowedTarget.objects.get()
    assert again.pk == entry.pk and again.status == "proposed" and again.token != entry.token
    assert again.decided_by is None and again.decision_note == ""


def test_it_shows_the_list_to_a_viewer_but_lets_only_maintainers_change_it(client, bob, bob_membership, entry):
    client.force_login(bob)
    page = client.get(reverse("targets-list", args=["shop"]))
    assert page.status_code == 200 and "api.shop.test" in page.content.decode()
    assert entry.token not in page.content.decode()  # the proof is the maintainers' business
    assert client.post(reverse("targets-list", args=["shop"]), {"pattern": "b.shop.test"}).status_code == 403
    assert client.post(reverse("targets-delete", args=["shop", entry.pk])).status_code == 403
    assert client.post(reverse("targets-verify", args=["shop", entry.pk])).status_code == 403
    assert list(AllowedTarget.objects.values_list("pattern", flat=True)) == ["api.shop.test"] and not actions()


def test_it_answers_404_to_an_outsider(client, charlie, charlies_project, entry):
    client.force_login(charlie)
    for response in (client.get(reverse("targets-list", args=["shop"])),
                     client.post(reverse("targets-list", args=["shop"]), {"pattern": "x.test"}),
                     client.post(reverse("targets-delete", args=["shop", entry.pk])),
                     client.post(reverse("targets-verify", args=["shop", entry.pk])),
                     client.get(reverse("targets-pending")),
                     client.post(reverse("targets-decide", args=[entry.pk]), {"decision": "approve"})):
        assert response.status_code == 404 and b"api.shop.test" not in response.content
    # His own project's delete cannot reach shop's entry either.
    assert client.post(reverse("targets-delete", args=["charlies", entry.pk])).status_code == 404
    entry.refresh_from_db()
    assert entry.status == "proposed" and not actions()


def test_it_sends_anonymous_users_to_login(client, entry):
    for url in (reverse("targets-list", args=["shop"]), reverse("targets-pending")):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_lists_pending_proposals_of_every_project_for_admins(client, admin_user, entry, charlies_project):
    other = allow(charlies_project, "*.charlie.test", status=AllowedTarget.Status.PROPOSED)
    allow(charlies_project, "done.charlie.test")
    client.force_login(admin_user)
    page = client.get(reverse("targets-pending")).content.decode()
    pending = page.split('id="pending-targets"')[1].split("</table>")[0]
    assert "api.shop.test" in pending and other.pattern in pending and "done.charlie.test" not in pending
    assert reverse("targets-pending") in client.get(reverse("scenarios-project-list")).content.decode()


def test_it_hides_the_pending_page_from_maintainers(client, alice, entry):
    client.force_login(alice)
    assert client.get(reverse("targets-pending")).status_code == 404
    assert client.post(reverse("targets-decide", args=[entry.pk]), {"decision": "approve"}).status_code == 404
    entry.refresh_from_db()
    assert entry.status == "proposed"
    assert reverse("targets-pending") not in client.get(reverse("scenarios-project-list")).content.decode()


def test_it_records_approvals_rejections_and_deletions(client, admin_user, alice, entry, project):
    client.force_login(admin_user)
    client.post(reverse("targets-decide", args=[entry.pk]), {"decision": "approve", "note": "ticket OPS-12"})
    entry.refresh_from_db()
    assert (entry.status, entry.decided_by, entry.decision_note) == ("approved", admin_user, "ticket OPS-12")
    second = allow(project, "evil.test", status=AllowedTarget.Status.PROPOSED)
    client.post(reverse("targets-decide", args=[second.pk]), {"decision": "reject", "note": "not the shop's"})
    second.refresh_from_db()
    assert second.status == "rejected"
    client.force_login(alice)
    client.post(reverse("targets-delete", args=["shop", entry.pk]))
    assert not AllowedTarget.objects.filter(pk=entry.pk).exists()
    assert actions() == [("target.approved", "root", "shop", "allowed target api.shop.test"),
                         ("target.rejected", "root", "shop", "allowed target evil.test"),
                         ("target.deleted", "alice", "shop", "allowed target api.shop.test")]
    assert AuditEntry.objects.filter(action="target.approved").get().interface == "ui"


def test_it_links_the_list_from_the_project_page(client, bob, bob_membership, project):
    client.force_login(bob)
    assert reverse("targets-list", args=["shop"]) in client.get(project.get_absolute_url()).content.decode()


def test_an_internal_address_is_not_offered_proof_of_control(client, alice, project):
    from targets.models import AllowedTarget

    AllowedTarget.objects.create(project=project, pattern="127.0.0.2:8798", kind="host", proposed_by=alice)
    AllowedTarget.objects.create(project=project, pattern="shop.example.com", kind="host", proposed_by=alice)
    client.force_login(alice)
    page = client.get(f"/p/{project.slug}/targets/").content.decode()
    assert "127.0.0.2:8798 is an internal address: proof of control cannot reach it, so an admin approves it." in page
    assert "Prove control of shop.example.com" in page and "Prove control of 127.0.0.2" not in page
