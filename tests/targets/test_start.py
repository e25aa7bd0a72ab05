"""A run, API start or schedule with a host outside the project's allow list is refused, naming the
host and how to get it approved; the slots' assignments carry the approved patterns to the pool."""

import pytest
from django.urls import reverse

from automation import schedules
from automation.models import Schedule, ScheduleSkip
from runs import services
from runs.models import Run
from targets.models import AllowedTarget
from targets.policy import TargetNotAllowed
from tests.api.conftest import ApiClient, key_for
from tests.conftest import store_scenario
from tests.targets.conftest import allow

UNLISTED = "https://api.shop.test"


def assert_names_the_host_and_the_way(text: str, host: str = "api.shop.test") -> None:
    assert f"{host} is not on the allowed targets of Shop" in text
    assert "Allowed targets page (/p/shop/targets/)" in text and "an admin approves it" in text


def _start_data(**extra):
    return {"users": 3, "spawn_rate": 1, "duration": "30s", "host": UNLISTED, "slots": 1, **extra}


def test_it_refuses_a_run_from_the_form_for_an_unlisted_host(enforced, client, alice, scenario):
    client.force_login(alice)
    response = client.post(reverse("runs-create", args=[scenario.pk]), _start_data())
    assert response.status_code == 200
    assert_names_the_host_and_the_way(response.context["form"].errors["host"][0])  # TargetNotAllowed.field
    assert "api.shop.test is not on the allowed targets" in response.content.decode()
    assert not Run.objects.exists()


def test_it_starts_a_run_from_the_form_once_the_host_is_approved(enforced, client, alice, scenario):
    entry = allow(scenario.project, "api.shop.test", status=AllowedTarget.Status.PROPOSED)
    client.force_login(alice)
    assert client.post(reverse("runs-create", args=[scenario.pk]), _start_data()).status_code == 200
    entry.status = AllowedTarget.Status.APPROVED
    entry.save()
    response = client.post(reverse("runs-create", args=[scenario.pk]), _start_data())
    assert response.status_code == 302 and Run.objects.get().params["host"] == UNLISTED


def test_it_answers_the_api_400_on_the_host_field(enforced, client, alice, scenario):
    api = ApiClient(client, key_for(alice))
    response = api.post_json(f"/api/scenarios/{scenario.pk}/runs/", {"host": UNLISTED})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["host"]
    assert_names_the_host_and_the_way(errors["host"][0])
    assert not Run.objects.exists()
    allow(scenario.project, "*.shop.test")
    assert api.post_json(f"/api/scenarios/{scenario.pk}/runs/", {"host": UNLISTED}).status_code == 201


def test_it_refuses_to_save_a_schedule_for_an_unlisted_host(enforced, client, alice, scenario):
    client.force_login(alice)
    data = {"name": "nightly", "preset": "custom", "cron": "5 * * * *", "timezone": "UTC", "overlap": "skip",
            "enabled": "on", "users": "", "spawn_rate": "", "duration": "", "host": UNLISTED, "slots": ""}
    response = client.post(reverse("automation-schedule-create", args=[scenario.pk]), data)
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["host"]
    assert_names_the_host_and_the_way(response.context["form"].errors["host"][0])
    # Empty: the scenario's default host, which is checked the same way.
    scenario.default_host = "http://10.20.30.40:8080"
    scenario.save()
    response = client.post(reverse("automation-schedule-create", args=[scenario.pk]), {**data, "host": ""})
    assert_names_the_host_and_the_way(response.context["form"].errors["host"][0], "10.20.30.40:8080")
    assert not Schedule.objects.exists()
    allow(scenario.project, "10.20.30.0/24")
    response = client.post(reverse("automation-schedule-create", args=[scenario.pk]), {**data, "host": ""})
    assert response.status_code == 302


def test_it_records_a_fire_for_a_host_that_left_the_list(enforced, scenario):
    entry = allow(scenario.project, "api.shop.test")
    schedule = schedules.save_schedule(Schedule(scenario=scenario, name="hourly", cron="0 * * * *", host=UNLISTED))
    assert isinstance(schedules.fire(schedule), Run)
    Run.objects.all().delete()
    entry.delete()
    skip = schedules.fire(schedule)
    assert skip.kind == ScheduleSkip.Kind.ERROR
    assert_names_the_host_and_the_way(skip.reason)
    assert not Run.objects.exists()


def test_it_checks_the_locustfiles_host_when_the_run_names_none(enforced, project, alice):
    content = (b"from locust import HttpUser, task\n\nclass Api(HttpUser):\n    host = 'https://legacy.shop.test:8443'\n\n"
               b"    @task\n    def ok(self):\n        self.client.get('/')\n")
    scenario = store_scenario(project, alice, name="Legacy", content=content)
    with pytest.raises(TargetNotAllowed) as refused:
        services.start_run(scenario, user=alice)
    assert refused.value.host == "legacy.shop.test:8443"
    allow(project, "legacy.shop.test:8443")
    assert services.start_run(scenario, user=alice).status == Run.Status.QUEUED


def test_it_allows_loopback_without_an_entry_only_in_development_mode(enforced, scenario, alice):
    with pytest.raises(TargetNotAllowed):
        services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:8089"})
    enforced.SWARMDECK_ALLOW_LOOPBACK_TARGETS = True
    assert services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:8089"})
    with pytest.raises(TargetNotAllowed):
        services.start_run(scenario, user=alice, params={"host": UNLISTED})


def test_it_allows_every_host_when_enforcement_is_off(enforced, scenario, alice):
    enforced.SWARMDECK_TARGET_ALLOW_LIST = False
    run = services.start_run(scenario, user=alice, params={"host": UNLISTED})
    run.token = "t"
    assert all(a["params"]["targets"] is None for a in services.assignments(run))


def test_it_sends_only_the_approved_patterns_to_the_slots(enforced, scenario, alice):
    allow(scenario.project, "api.shop.test")
    allow(scenario.project, "203.0.113.0/24")
    allow(scenario.project, "staging.shop.test", status=AllowedTarget.Status.PROPOSED)
    allow(scenario.project, "evil.test", status=AllowedTarget.Status.REJECTED)
    run = services.start_run(scenario, user=alice, params={"host": UNLISTED, "slots": 2})
    run.token = "t"
    targets = [a["params"]["targets"] for a in services.assignments(run)]
    assert targets == [{"patterns": ["203.0.113.0/24", "api.shop.test"], "loopback": False}] * 2
