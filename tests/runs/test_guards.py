"""What stops a run that could not work from being started, or from blocking others (first trial's findings)."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from runs import services
from runs.models import Run, RunSlot
from tests.runs.conftest import event, ready_both, spin, start
from workers import protocol, registry, wire
from workers.stats import Recorder

pytestmark = pytest.mark.django_db(transaction=True)


def _post(client, scenario, **fields):
    data = {"users": 2, "spawn_rate": 1, "duration": "10s", "slots": 1, "host": "http://127.0.0.1:9", **fields}
    return client.post(reverse("runs-create", args=[scenario.pk]), data)


@pytest.mark.parametrize("host, message", [
    ("ftp://127.0.0.1/", "is not an http:// or https:// URL"),
    ("http://127.0.0.1:9/ok?x=1", "Leave the query string and fragment out of the host"),
    ("not a url", "Enter an http:// or https:// URL with a host name, e.g. https://shop.example.com."),
    ("ftp://x", "Enter an http:// or https:// URL with a host name, e.g. https://shop.example.com."),
])
def test_it_refuses_a_host_locust_cannot_load(redis, client, alice, scenario, host, message):
    client.force_login(alice)
    page = _post(client, scenario, host=host).content.decode()
    assert message in page
    assert "Name the host to test" not in page  # one error per mistake
    assert not Run.objects.exists()
    with pytest.raises(services.RunError, match="http:// or https://"):
        services.start_run(scenario, user=alice, params={"host": "ftp://127.0.0.1/"})


def test_it_accepts_a_host_with_a_path_prefix(redis, client, alice, scenario):
    client.force_login(alice)
    assert _post(client, scenario, host="http://127.0.0.1:9/api").status_code == 302


def test_it_refuses_more_slots_than_the_cluster_has(redis, fake_workers, client, alice, scenario):
    client.force_login(alice)
    page = _post(client, scenario, slots=3).content.decode()
    assert "The cluster has 2 slots online: ask for at most 2" in page
    assert not Run.objects.exists()
    assert _post(client, scenario, slots=2).status_code == 302


def test_a_run_larger_than_the_cluster_does_not_block_the_queue(redis, fake_workers, tasks, collector, alice,
                                                               project):
    too_big = start(project, alice, slots=3)  # e.g. from a schedule, or before a machine left
    small = start(project, alice, slots=1)
    spin(collector, lambda: Run.objects.get(pk=small.pk).status == Run.Status.DISPATCHING)
    assert Run.objects.get(pk=too_big.pk).status == Run.Status.QUEUED


def _empty_final(run, slot, cpu):
    return wire.encode(Recorder().take_delta(run=run.pk, slot=slot, seq=1, tick=0, elapsed=0.5, users=0, cpu=cpu,
                                             kind="final"))


def test_it_warns_when_a_run_sent_no_requests_and_ignores_a_final_cpu_blip(redis, fake_workers, tasks, collector,
                                                                          alice, project):
    run = start(project, alice, duration=1)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.STOPPING, timeout=15)
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, _empty_final(run, slot, cpu=142.0))
        event(redis, run, slot, protocol.EVENT_DONE, {"exit_code": 0})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED)
    run.refresh_from_db()
    assert [w["kind"] for w in run.warnings] == ["no_requests"]
    assert "sent no requests" in run.warnings[0]["message"]
    assert all(s.cpu is None or s.cpu <= 100 for s in RunSlot.objects.filter(run=run))


def _runscenario(tmp_path, *args):
    locustfile = tmp_path / "shop.py"
    locustfile.write_text("from locust import HttpUser, task\n\n\nclass U(HttpUser):\n    @task\n    def t(self):\n"
                          "        self.client.get('/')\n")
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("runscenario", str(locustfile), "--host", "http://127.0.0.1:9", "--user", "alice", *args,
                     stderr=err, stdout=io.StringIO())
    return exit_info.value.code, err.getvalue()


def test_the_cli_says_when_no_collector_is_running_instead_of_waiting(redis, alice, project, tmp_path):
    redis.delete(protocol.COLLECTORS)
    code, err = _runscenario(tmp_path)
    assert code == 2 and "No collector is running" in err
    assert not Run.objects.exists()


def test_the_cli_refuses_more_slots_than_the_cluster_has(redis, fake_workers, alice, project, tmp_path):
    registry.collector_present(redis, "test", ttl=30)
    code, err = _runscenario(tmp_path, "--slots", "5")
    assert code == 2 and "The cluster has 2 slots online and this run asks for 5" in err
    assert not Run.objects.exists()


def test_the_cli_names_a_broken_file_by_its_own_name(redis, alice, project, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("from locust import HttpUser\n\nclass U(HttpUser)\n    pass\n")
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("runscenario", str(broken), "--user", "alice", stderr=err, stdout=io.StringIO())
    assert exit_info.value.code == 2
    assert "broken.py, line 3" in err.getvalue() and "locustfile.py" not in err.getvalue()
