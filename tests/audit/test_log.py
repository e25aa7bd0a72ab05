"""audit.log itself: what an entry keeps, what it refuses to keep, and that it never breaks a change."""

import asyncio

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.db import DatabaseError, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from audit import log as audit_log
from audit.log import interface, record, via
from audit.middleware import InterfaceMiddleware
from audit.models import AuditEntry
from scenarios.models import Membership, Project


def test_it_drops_every_key_that_could_hold_a_secret_at_any_depth(project, alice):
    record("secret.set", actor=alice, project=project, subject="secret API_TOKEN", details={
        "name": "API_TOKEN", "value": "hunter22", "new_value": "x", "secret": "y", "api_key": "z",
        "password": "p", "nested": {"token": "t", "kept": 1}, "rows": [{"ciphertext": "c", "name": "A"}],
        "secret_names": ["API_TOKEN"]})
    assert AuditEntry.objects.get(action="secret.set").details == {
        "name": "API_TOKEN", "nested": {"kept": 1}, "rows": [{"name": "A"}], "secret_names": ["API_TOKEN"]}


def test_it_stores_who_from_where_and_in_which_project(project, alice):
    with via("api:deploy-bot"):
        record("quota.changed", actor=alice, project=project, subject="quota of Shop", details={"max_slots": 4})
    entry = AuditEntry.objects.get(action="quota.changed")
    assert (entry.actor, entry.actor_name, entry.interface) == (alice, "alice", "api:deploy-bot")
    assert (entry.project, entry.project_name, entry.project_slug) == (project, "Shop", "shop")
    assert entry.details == {"max_slots": 4}


def test_without_a_context_a_change_is_the_systems_and_without_a_project_it_is_site_wide(db):
    record("cluster.stopped_all", subject="every active run")
    entry = AuditEntry.objects.get(action="cluster.stopped_all")
    assert (entry.actor, entry.actor_name, entry.interface, entry.project) == (None, "", "system", None)


def test_a_failed_write_is_logged_and_the_callers_transaction_goes_on(project, alice, django_user_model,
                                                                      monkeypatch, caplog):
    def broken_save(self, *args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(AuditEntry, "save", broken_save)
    dave = django_user_model.objects.create_user("dave")
    with transaction.atomic():
        record("member.added", actor=alice, project=project, subject="member dave")
        Membership.objects.create(user=dave, project=project)  # the change itself still works
    assert Membership.objects.filter(user=dave).exists()
    assert "could not be written" in caplog.text
    assert not AuditEntry.objects.filter(action="member.added").exists()


def test_a_change_that_rolls_back_takes_its_entry_with_it(project, alice):
    with pytest.raises(RuntimeError), transaction.atomic():
        record("project.edited", actor=alice, project=project, subject="project Shop")
        raise RuntimeError("the change failed")
    assert not AuditEntry.objects.filter(action="project.edited").exists()


def test_an_entry_still_reads_after_its_user_and_project_are_deleted(client, project, alice, django_user_model):
    record("project.edited", actor=alice, project=project, subject="project Shop")
    project_id = project.pk
    alice.delete()
    Project.objects.filter(pk=project_id).delete()
    entry = AuditEntry.objects.get(action="project.edited")
    assert (entry.actor, entry.actor_name, entry.project, entry.project_name) == (None, "alice", None, "Shop")
    admin = django_user_model.objects.create_user("root", is_staff=True)
    client.force_login(admin)
    page = client.get(reverse("audit-site"), {"action": "project.edited"}).content.decode()
    assert "<strong>alice</strong> <span class=\"muted small\">(deleted)</span>" in page and "shop" in page


def test_via_nests_and_restores_the_outer_interface():
    assert interface() == "system"
    with via("ui"):
        with via("api:x"):
            assert interface() == "api:x"
        assert interface() == "ui"
    assert interface() == "system"


def test_the_interface_follows_async_code_and_threads_without_leaking_between_tasks():
    seen = {}

    def in_a_thread():
        return interface()

    async def task(name):
        with via(name):
            await asyncio.sleep(0.01)  # the other task sets its own interface meanwhile
            seen[name] = (interface(), await sync_to_async(in_a_thread)())

    async def both():
        await asyncio.gather(task("ui"), task("schedule:3"))

    async_to_sync(both)()
    assert seen == {"ui": ("ui", "ui"), "schedule:3": ("schedule:3", "schedule:3")}
    assert interface() == "system"


def test_the_middleware_sets_ui_in_sync_and_async_stacks():
    request = RequestFactory().get("/")

    def sync_view(request):
        return HttpResponse(interface())

    async def async_view(request):
        return HttpResponse(interface())

    assert InterfaceMiddleware(sync_view)(request).content == b"ui"
    middleware = InterfaceMiddleware(async_view)
    assert iscoroutinefunction(middleware)
    assert async_to_sync(middleware)(request).content == b"ui"
    assert interface() == "system"


def test_the_site_admin_can_see_a_record_made_outside_any_request(db, django_user_model, client):
    audit_log.record("cluster.drained", subject="worker w1")
    admin = django_user_model.objects.create_user("root", is_staff=True)
    client.force_login(admin)
    page = client.get(reverse("audit-site")).content.decode()
    assert "cluster.drained" in page and "worker w1" in page and "site-wide" in page


def test_the_admin_shows_entries_but_cannot_change_or_delete_them(client, django_user_model, project, alice):
    record("project.edited", actor=alice, project=project, subject="project Shop")
    entry = AuditEntry.objects.get(action="project.edited")
    root = django_user_model.objects.create_superuser("root", password="x")
    client.force_login(root)
    listing = client.get(reverse("admin:audit_auditentry_changelist"))
    assert listing.status_code == 200 and "project Shop" in listing.content.decode()
    page = client.get(reverse("admin:audit_auditentry_change", args=[entry.pk])).content.decode()
    assert 'name="_save"' not in page
    assert client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
