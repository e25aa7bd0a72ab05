"""The Usage page (members read the quota, admins set it, every change audited) and the admins' page of all
projects with its CSV."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from audit.models import AuditEntry
from runs.models import Run
from sharing.models import Quota


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_user("root", password="x", is_staff=True)


def _finished(scenario, slots: int, hours: float) -> Run:
    now = timezone.now()
    run = Run.objects.create(project=scenario.project, scenario=scenario, version=scenario.current_version,
                             params={"slots": slots, "duration": 60, "users": 1}, status=Run.Status.FINISHED,
                             created_by=scenario.project.created_by)
    Run.objects.filter(pk=run.pk).update(dispatched_at=now - timedelta(hours=hours), ended_at=now)
    return run


def test_a_member_reads_the_quota_and_the_months_use_but_cannot_set_it(client, bob, bob_membership, scenario):
    Quota.objects.create(project=scenario.project, max_slots_per_run=4, monthly_slot_hours=10)
    _finished(scenario, 2, 0.25)
    client.force_login(bob)
    page = client.get("/p/shop/usage/")
    body = page.content.decode()
    assert page.status_code == 200 and 'data-month-hours>0.50<' in body
    assert "Checkout: 0.50 slot-h" in body and "alice: 0.50 slot-h" in body
    assert "Save quota" not in body
    assert client.post("/p/shop/usage/", {"max_slots_per_run": 100, "weight": 1}).status_code == 403
    assert Quota.objects.get().max_slots_per_run == 4


def test_an_outsider_gets_404(client, charlie, scenario):
    client.force_login(charlie)
    assert client.get("/p/shop/usage/").status_code == 404
    assert client.get("/usage/").status_code == 404
    assert client.get("/usage/?format=csv").status_code == 404


def test_an_admin_sets_the_quota_and_the_audit_log_says_what_changed(client, admin_user, scenario):
    Quota.objects.create(project=scenario.project, max_concurrent_slots=2)
    client.force_login(admin_user)
    response = client.post("/p/shop/usage/", {"max_concurrent_slots": 1, "max_duration": "5m", "weight": 3})
    assert response.status_code == 302
    quota = Quota.objects.get()
    assert (quota.max_concurrent_slots, quota.max_duration, quota.weight) == (1, 300, 3)
    entry = AuditEntry.objects.get(action="quota.changed")
    assert entry.details == {"changed": {"max_concurrent_slots": {"from": 2, "to": 1},
                                         "max_duration": {"from": None, "to": 300},
                                         "weight": {"from": 1, "to": 3}}}
    assert entry.interface == "ui" and entry.actor == admin_user


def test_the_admins_page_lists_every_project_and_exports_csv(client, admin_user, scenario, charlies_project):
    _finished(scenario, 4, 0.5)
    client.force_login(admin_user)
    page = client.get("/usage/").content.decode()
    assert "Shop" in page and "Charlie&#x27;s" in page
    csv_text = client.get("/usage/?format=csv").content.decode()
    rows = [line.split(",") for line in csv_text.strip().splitlines()]
    assert rows[0] == ["project", "month", "slot_hours", "runs", "monthly_slot_hours_quota_now", "weight_now"]
    this_month = timezone.now().strftime("%Y-%m")
    assert ["shop", this_month, "2.0000", "1", "", "1"] in rows
    assert ["charlies", this_month, "0.0000", "0", "", "1"] in rows
    assert len(rows) == 1 + 2 * 12


def test_quotas_and_targets_changed_in_the_django_admin_are_audited(client, admin_user, scenario):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    response = client.post("/admin/sharing/quota/add/", {"project": scenario.project.pk, "weight": 3,
                                                          "max_slots_per_run": 2})
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(action="quota.changed")
    assert entry.details["changed"] == {"max_slots_per_run": {"from": None, "to": 2}, "weight": {"from": None, "to": 3}}
    assert entry.details["where"] == "Django admin"
    response = client.post("/admin/targets/allowedtarget/add/", {
        "project": scenario.project.pk, "pattern": "shop.example.com", "kind": "host", "status": "approved",
        "proposed_at_0": "2026-12-01", "proposed_at_1": "10:00:00"})
    assert response.status_code == 302, response.content.decode()[:3000]
    added = AuditEntry.objects.get(action="target.added")
    assert added.details["status"] == "approved" and added.subject == "target shop.example.com"
