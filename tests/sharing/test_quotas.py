"""Quotas: each hard cap refuses a run at start, naming the cap, in start_run, the form, the API and
runscenario; the concurrent cap makes a run wait instead; slot-hours come from the runs."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from runs import services
from runs.models import Run
from sharing import quotas, usage
from sharing.models import Quota
from tests.api.conftest import ApiClient, key_for
from workers import registry

HOST = "http://127.0.0.1:9"

CAPS = [
    ({"max_slots_per_run": 2}, {"slots": 3},
     "Shop may use at most 2 slots per run (its quota) and this run asks for 3: ask for fewer.", "slots"),
    ({"max_concurrent_slots": 2}, {"slots": 3},
     "Shop may hold at most 2 slots at once (its quota), so a run of 3 could never start: ask for fewer.", "slots"),
    ({"max_duration": 600}, {"duration": 1200},
     "Shop's runs may last at most 10 min (its quota) and this run asks for 20 min: set a shorter duration.",
     "duration"),
    ({"max_users_per_slot": 10}, {"users": 25, "slots": 2},
     "Shop may run at most 10 users per slot (its quota): 25 users on 2 slots is 13 per slot. Ask for at most 20 "
     "users, or more slots.", "users"),
]
SEVERAL = [
    ({"max_slots_per_run": 1, "max_duration": 60}, {"slots": 2, "duration": 120},
     {"slots": ["Shop may use at most 1 slot per run (its quota) and this run asks for 2: ask for fewer."],
      "duration": ["Shop's runs may last at most 1 min (its quota) and this run asks for 2 min: set a shorter "
                   "duration."]}),
]


@pytest.mark.parametrize("quota, params, message, field", CAPS)
def test_each_hard_cap_refuses_the_start_and_names_itself(scenario, alice, quota, params, message, field):
    Quota.objects.create(project=scenario.project, **quota)
    with pytest.raises(quotas.QuotaRefused) as refused:
        services.start_run(scenario, user=alice, params={"host": HOST, **params})
    assert str(refused.value) == message
    assert refused.value.field == field and refused.value.cap == next(iter(quota))
    assert not Run.objects.exists()


@pytest.mark.parametrize("quota, params, errors", SEVERAL)
def test_a_run_over_several_caps_hears_of_all_of_them_at_once(client, alice, scenario, quota, params, errors):
    Quota.objects.create(project=scenario.project, **quota)
    with pytest.raises(quotas.QuotaRefused) as refused:
        services.start_run(scenario, user=alice, params={"host": HOST, **params})
    assert refused.value.errors == errors
    api = ApiClient(client, key_for(alice))
    response = api.post_json(f"/api/scenarios/{scenario.pk}/runs/", {"host": HOST, **params})
    assert response.status_code == 400 and response.json()["errors"] == errors
    client.force_login(alice)
    page = client.post(f"/scenarios/{scenario.pk}/runs/new/", {
        "users": 1, "spawn_rate": 1, "duration": str(params["duration"]), "host": HOST, "slots": params["slots"]})
    assert {field: list(messages) for field, messages in page.context["form"].errors.items()} == errors
    assert not Run.objects.exists()


def test_users_per_slot_suggests_more_slots_only_when_the_quota_allows_them(scenario, alice):
    Quota.objects.create(project=scenario.project, max_users_per_slot=5, max_slots_per_run=1)
    with pytest.raises(quotas.QuotaRefused) as refused:
        services.start_run(scenario, user=alice, params={"host": HOST, "users": 6, "slots": 1})
    assert str(refused.value).endswith("Ask for at most 5 users.")


def test_under_the_caps_a_run_starts(scenario, alice):
    Quota.objects.create(project=scenario.project, max_slots_per_run=2, max_duration=600, max_users_per_slot=10)
    run = services.start_run(scenario, user=alice, params={"host": HOST, "slots": 2, "duration": 600, "users": 20})
    assert run.status == Run.Status.QUEUED


def test_a_site_default_applies_where_the_project_sets_none(scenario, alice, settings):
    settings.SWARMDECK_QUOTA_DEFAULTS = {"max_slots_per_run": 1}
    with pytest.raises(quotas.QuotaRefused, match="at most 1 slot per run"):
        services.start_run(scenario, user=alice, params={"host": HOST, "slots": 2})
    Quota.objects.create(project=scenario.project, max_slots_per_run=4)  # the project's own value wins
    assert services.start_run(scenario, user=alice, params={"host": HOST, "slots": 2}).slots_requested == 2


def test_a_run_without_a_duration_is_refused_under_a_duration_cap(scenario, alice):
    Quota.objects.create(project=scenario.project, max_duration=60)
    with pytest.raises(quotas.QuotaRefused, match="this run has no duration: set a shorter duration"):
        services.start_run(scenario, user=alice, params={"host": HOST, "duration": 0})


def test_the_form_shows_the_refusal_on_its_field(client, alice, scenario):
    Quota.objects.create(project=scenario.project, max_slots_per_run=2)
    client.force_login(alice)
    page = client.get(f"/scenarios/{scenario.pk}/runs/new/")
    assert "Quota of Shop:" in page.content.decode() and "at most 2 slots per run" in page.content.decode()
    response = client.post(f"/scenarios/{scenario.pk}/runs/new/", {
        "users": 5, "spawn_rate": 1, "duration": "60", "host": HOST, "slots": 3})
    assert response.status_code == 200
    assert response.context["form"].errors["slots"] == [CAPS[0][2]]
    assert not Run.objects.exists()


def test_the_api_answers_400_with_the_field(client, alice, scenario):
    Quota.objects.create(project=scenario.project, max_duration=600)
    api = ApiClient(client, key_for(alice))
    response = api.post_json(f"/api/scenarios/{scenario.pk}/runs/", {"host": HOST, "duration": 1200})
    assert response.status_code == 400
    assert response.json()["errors"] == {"duration": [CAPS[2][2]]}
    assert not Run.objects.exists()


def test_runscenario_exits_2_naming_the_cap(redis, fake_workers, alice, project, tmp_path):
    registry.collector_present(redis, "test", ttl=30)  # a collector is alive
    Quota.objects.create(project=project, max_slots_per_run=1)
    locustfile = tmp_path / "shop.py"
    locustfile.write_text("from locust import HttpUser, task\n\n\nclass U(HttpUser):\n    @task\n    def t(self):\n"
                          "        self.client.get('/')\n")
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("runscenario", str(locustfile), "--host", HOST, "--user", "alice", "--project", "shop",
                     "--slots", "2", stderr=err, stdout=io.StringIO())
    assert exit_info.value.code == 2
    assert "Shop may use at most 1 slot per run (its quota) and this run asks for 2" in err.getvalue()
    assert not Run.objects.exists()


def test_users_changed_while_running_stay_under_the_users_per_slot_cap(scenario, alice):
    Quota.objects.create(project=scenario.project, max_users_per_slot=10)
    run = services.start_run(scenario, user=alice, params={"host": HOST, "users": 5})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    with pytest.raises(quotas.QuotaRefused, match="at most 10 users per slot"):
        services.change_users(run, users=11, spawn_rate=1, user=alice)


def _held(scenario, slots: int, started: timedelta, ended: timedelta | None):
    now = timezone.now()
    run = Run.objects.create(project=scenario.project, scenario=scenario, version=scenario.current_version,
                             params={"slots": slots, "duration": 60, "users": 1}, status=Run.Status.FINISHED)
    Run.objects.filter(pk=run.pk).update(dispatched_at=now - started, ended_at=now - ended if ended else None)
    return run


def test_the_months_slot_hours_refuse_once_spent_and_warn_at_80_percent(scenario, alice, freeze_month_middle):
    Quota.objects.create(project=scenario.project, monthly_slot_hours=10)
    _held(scenario, 2, timedelta(hours=4, minutes=30), timedelta(hours=0.5))  # 8 slot-hours
    assert usage.month_slot_hours(scenario.project, timezone.now()) == pytest.approx(8, abs=0.01)
    assert quotas.month_warning(scenario.project) == ("Shop has used 8.00 of its 10.00 slot-hours this month (80%): "
                                                      "at 10.00 new runs are refused until next month.")
    with pytest.raises(quotas.QuotaRefused, match=r"would use 3.00 slot-hours \(3 slots × 1 h\) and Shop has 2.00"):
        services.start_run(scenario, user=alice, params={"host": HOST, "slots": 3, "duration": 3600})
    services.start_run(scenario, user=alice, params={"host": HOST, "slots": 1, "duration": 3600})
    _held(scenario, 1, timedelta(hours=2, minutes=1), timedelta(minutes=1))  # 10 in all
    with pytest.raises(quotas.QuotaRefused, match="Shop has used its 10.00 slot-hours for this month"):
        services.start_run(scenario, user=alice, params={"host": HOST, "duration": 60})


@pytest.fixture
def freeze_month_middle():
    """The slot-hours tests put runs hours back in time: they must stay inside this calendar month."""
    if timezone.now().day == 1 and timezone.now().hour < 6:
        pytest.skip("within 6 hours of a month's start the runs placed hours back would fall in the last month")


def test_a_run_spanning_two_months_counts_in_each(scenario):
    start = usage.month_start(timezone.now())
    run = _held(scenario, 3, timedelta(0), None)
    Run.objects.filter(pk=run.pk).update(dispatched_at=start - timedelta(hours=1), ended_at=start + timedelta(hours=2))
    runs = Run.objects.filter(project=scenario.project)
    assert usage.slot_hours(runs, start, usage.next_month(start)) == pytest.approx(6)
    before = usage.month_start(start - timedelta(days=1))
    assert usage.slot_hours(runs, before, start) == pytest.approx(3)
