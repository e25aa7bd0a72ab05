"""A slot whose bundle has requirements.txt: it shows as preparing while pip installs (offline,
from a wheel this test builds), its pool imports the package inside the sandbox, the next run
reuses the environment, and a requirement pip cannot satisfy fails the slot with pip's words."""

import pytest

from tests.workers.conftest import zip_bundle
from tests.workers.test_venvs import make_wheel

LOCUSTFILE = b'''\
import swarmdeck_tinypkg
from locust import HttpUser, task, constant

print("tinypkg says", swarmdeck_tinypkg.VALUE)


class U(HttpUser):
    wait_time = constant(0.1)

    @task
    def t(self):
        self.client.get("/ok")
'''


@pytest.fixture
def index(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "swarmdeck_tinypkg")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("SWARMDECK_VENV_DIR", str(tmp_path / "venvs"))
    return wheels


def _run_to_the_end(slot_run, target, requirements: bytes):
    bundle = zip_bundle({"locustfile.py": LOCUSTFILE, "requirements.txt": requirements})
    run = slot_run(bundle, kind="zip", host=target.url, users=1)
    run.start()
    return run


def test_a_slot_prepares_its_requirements_then_reuses_them(slot_run, target, index):
    first = _run_to_the_end(slot_run, target, b"# what the locustfile imports\nswarmdeck_tinypkg==1.0\n")
    first.wait_for("ready", timeout=120)
    first.go()
    first.wait_for("snapshot")
    first.stop()
    assert first.join(30) == "finished"
    preparing = first.of("preparing")
    assert preparing[0] == {"line": "Installing requirements.txt (1 requirement)…", "done": False}
    assert preparing[-1]["done"] is True and preparing[-1]["line"].startswith("Environment built in ")
    assert first.types().index("ready") > first.types().index("preparing")
    logged = [line["message"] for line in first.log_lines()]
    assert "tinypkg says swarmdeck_tinypkg 1.0" in logged  # imported by the pool, in its sandbox
    assert any(message.startswith("pip: Successfully installed swarmdeck_tinypkg-1.0") for message in logged)

    second = _run_to_the_end(slot_run, target, b"swarmdeck_tinypkg==1.0\n")
    second.wait_for("ready", timeout=60)
    second.stop()
    second.join(30)
    reused = second.of("preparing")[-1]
    assert reused["line"].startswith("Environment reused from this machine's cache")
    # The start's requirements step: what the cache saves (the pool's own boot is the same both times;
    # bench/engine.py benchmark 8 measures the whole submit -> running).
    assert reused["seconds"] * 5 <= preparing[-1]["seconds"], (preparing[-1], reused)


def test_a_requirement_pip_cannot_install_fails_the_slot_with_pips_message(slot_run, target, index):
    run = _run_to_the_end(slot_run, target, b"swarmdeck_tinypkg==9.9\n")
    assert run.join(120) == "error"
    error = run.of("error")[0]
    assert error["stage"] == "prepare"
    assert error["message"].startswith("pip could not install requirements.txt:")
    assert "No matching distribution found for swarmdeck_tinypkg==9.9" in error["message"]
    assert "ready" not in run.types()


def test_a_slot_keeps_its_busy_lease_while_pip_is_silent(slot_run, target, index, redis_client, monkeypatch):
    import time

    from workers import preparing, protocol, registry, slot

    monkeypatch.setattr(slot, "LEASE_REFRESH", 0.2)
    monkeypatch.setattr(protocol, "BUSY_TTL_SECONDS", 1)
    real_enter = preparing.enter
    seen: list[bool] = []

    def silent_pip(bundle_dir, stack, say, event):
        for _ in range(6):  # 3 s without a line from pip: three times the lease's time to live
            time.sleep(0.5)
            seen.append(bool(registry.leases(redis_client, "tests@worker")))  # SlotRun's worker
        return real_enter(bundle_dir, stack, say, event)

    monkeypatch.setattr(preparing, "enter", silent_pip)
    run = _run_to_the_end(slot_run, target, b"swarmdeck_tinypkg==1.0\n")
    run.wait_for("ready", timeout=60)
    run.stop()
    run.join(30)
    assert seen == [True] * 6
