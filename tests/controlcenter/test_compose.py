"""docker-compose.yml cannot be started here (no Docker engine), so check what can be checked:
it parses, and every command of every Swarmdeck service refers to something this project has."""

import ast
import os
import shlex
import subprocess
import sys

import pytest
import yaml

from controlcenter.env import BASE_DIR

COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OWN = {name: spec for name, spec in SERVICES.items() if spec.get("image", "").startswith("swarmdeck")}


def _commands(spec) -> list[list[str]]:
    command = spec["command"]
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def _run(argv, env=None):
    return subprocess.run(argv, cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_it_has_the_services_a_deployment_needs():
    assert {"postgres", "redis", "migrate", "web", "collector", "beat", "control", "worker"} <= set(SERVICES)
    assert set(OWN) == {"migrate", "web", "collector", "beat", "control", "worker"}
    redis_command = " ".join(SERVICES["redis"]["command"])
    assert "--appendonly yes" in redis_command and "--appendfsync everysec" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command


def test_it_runs_a_control_worker_with_django_on_the_control_queue():
    control = SERVICES["control"]
    argv = control["command"]
    assert argv[:4] == ["celery", "-A", "controlcenter", "worker"]
    assert argv[argv.index("-Q") + 1] == "control" and argv[argv.index("-c") + 1] == "1"
    assert control["environment"]["DJANGO_SETTINGS_MODULE"] == "controlcenter.settings"
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SWARMDECK_BASE_URL"} <= set(control["environment"])
    assert control["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_it_lets_workers_scale_and_keeps_them_away_from_secrets():
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale worker=4` must work
    assert set(worker["environment"]) == {"REDIS_URL"}


def test_it_puts_load_workers_on_a_network_that_reaches_redis_but_not_postgres():
    worker_networks = set(SERVICES["worker"]["networks"])
    assert worker_networks & set(SERVICES["redis"]["networks"])
    assert not worker_networks & set(SERVICES["postgres"]["networks"])
    assert all(COMPOSE["networks"][name].get("internal") for name in SERVICES["postgres"]["networks"])


def test_it_always_requires_a_redis_password():
    command = " ".join(SERVICES["redis"]["command"])
    assert '--requirepass "$$REDIS_PASSWORD"' in command
    assert SERVICES["redis"]["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    for name, spec in OWN.items():
        environment = spec.get("environment") or COMPOSE["x-app"]["environment"]
        assert environment["REDIS_URL"] == "redis://:${REDIS_PASSWORD}@redis:6379/0", name


def test_it_installs_bubblewrap_and_lets_workers_use_user_namespaces():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends bubblewrap" in dockerfile
    assert "seccomp=unconfined" in SERVICES["worker"]["security_opt"]


@pytest.mark.parametrize("service", sorted(OWN))
def test_it_runs_commands_that_exist_in_the_project(service):
    for argv in _commands(OWN[service]):
        program = argv[0]
        if program == "python" and argv[1] == "manage.py":
            listing = _run([sys.executable, "manage.py", "help", "--commands"]).stdout.split()
            assert argv[2] in listing, f"{service}: manage.py has no command {argv[2]!r}"
        elif program == "daphne":
            module, attribute = argv[-1].split(":")
            source = (BASE_DIR / (module.replace(".", "/") + ".py")).read_text()
            assigned = {t.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assign)
                        for t in node.targets if isinstance(t, ast.Name)}
            assert attribute in assigned, f"{service}: {module} defines no {attribute}"
            help_text = _run([sys.executable, "-m", "daphne", "--help"]).stdout
            for option in (a for a in argv[1:] if a.startswith("-")):
                assert option in help_text, f"{service}: daphne has no option {option}"
        elif program == "celery":
            # --help makes Celery load the app and parse every option, then exit without running.
            env = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
            if "DJANGO_SETTINGS_MODULE" in OWN[service].get("environment", {}):
                env["DJANGO_SETTINGS_MODULE"] = "controlcenter.settings"
            result = _run([sys.executable, "-m", *argv, "--help"], env=env)
            assert result.returncode == 0, f"{service}: {' '.join(argv)}\n{result.stderr[-2000:]}"
        else:
            pytest.fail(f"{service}: unexpected program {program!r}")


def test_it_builds_from_files_that_exist():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert "COPY requirements.txt" in dockerfile and (BASE_DIR / "requirements.txt").exists()
    assert "controlcenter.asgi:application" in dockerfile
