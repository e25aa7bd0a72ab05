"""What a locustfile may touch, attacked from inside a real run on real Celery load workers.

The probe is a locustfile as a stranger would upload it: it looks for credentials and the
control plane, and reports what it found the way a real probe would smuggle it out, as
request names in its own run's report. The same run has an ordinary FastHttpUser whose
requests must equal what nginx served: the sandbox costs nothing visible.
"""

import ast
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
from django.conf import settings
from django.db import connection

from controlcenter.env import BASE_DIR
from runs import services
from runs.models import Run
from tests.conftest import store_scenario
from workers import sandbox

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not sandbox.probe().isolated, reason=f"no sandbox here: {sandbox.probe().detail}")]

PROBE = '''\
import glob, json, os, socket
from locust import FastHttpUser, User, constant, events, task

TARGETS = json.loads({targets!r})


def report(what, result):
    events.request.fire(request_type="PROBE", name=f"{{what}} => {{result}}"[:1500], response_time=0,
                        response_length=0, exception=None, context={{}})


def attempt(what, action):
    try:
        report(what, "ok: " + repr(action())[:1200])
    except BaseException as error:
        report(what, f"denied: {{type(error).__name__}}")


def redis_ping(host, port):
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(b"PING\\r\\n")
        return sock.recv(200).decode(errors="replace").strip()


def postgres_login(spec):
    import psycopg2  # the worker's own driver, visible read-only like every site-package
    psycopg2.connect(host=spec["host"], port=spec["port"], user=spec["user"], dbname=spec["name"],
                     connect_timeout=3).close()
    return "AUTHENTICATED"


def write(path):
    with open(path, "w") as out:
        out.write("pwned")
    return "written"


class Probe(User):
    fixed_count = 1
    wait_time = constant(60)

    def on_start(self):
        for key, value in sorted(os.environ.items()):
            report("env", f"{{key}}={{value}}")
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        report("pids", pids)
        for pid in pids:
            attempt(f"/proc/{{pid}}/environ", lambda pid=pid: open(f"/proc/{{pid}}/environ", "rb").read())
            attempt(f"/proc/{{pid}}/cmdline", lambda pid=pid: open(f"/proc/{{pid}}/cmdline", "rb").read())
        for folder in TARGETS["var_dirs"] + [os.path.join(os.getcwd(), "var")]:
            attempt(f"list {{folder}}", lambda folder=folder: os.listdir(folder))
            for name in ("secret_key", "swarmdeck.sqlite3", "redis/password", "redis/embedded.json"):
                attempt(f"read {{folder}}/{{name}}", lambda p=os.path.join(folder, name): open(p, "rb").read(200))
        attempt("list project root", lambda: os.listdir(TARGETS["project_root"]))
        attempt("glob /tmp", lambda: glob.glob("/tmp/*"))
        attempt("redis ping", lambda: redis_ping(TARGETS["redis"]["host"], TARGETS["redis"]["port"]))
        if TARGETS["postgres"]:
            attempt("postgres login", lambda: postgres_login(TARGETS["postgres"]))
        for path in TARGETS["writes"]:
            attempt(f"write {{path}}", lambda path=path: write(path))
        attempt("write run dir", lambda: write(os.path.join(os.getcwd(), "mine.txt")))

    @task
    def idle(self):
        pass


class Shopper(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def ok(self):
        self.client.get("/ok")
'''


def targets(marker: str) -> dict:
    redis = urlsplit(settings.REDIS_URL)
    db = connection.settings_dict
    postgres = None
    if db["ENGINE"].endswith("postgresql"):
        postgres = {"host": db["HOST"] or "127.0.0.1", "port": int(db["PORT"] or 5432),
                    "user": db["USER"] or "postgres", "name": db["NAME"]}
    var_dirs = sorted({str(BASE_DIR / "var"), os.environ["VAR_DIR"]})
    writes = [str(BASE_DIR / f"{marker}.txt"), str(BASE_DIR / "workers" / f"{marker}.txt"),
              f"{os.environ['VAR_DIR']}/{marker}.txt", f"/mnt/{marker}.txt", f"/{marker}.txt",
              f"/usr/{marker}.txt", f"/tmp/{marker}.txt"]
    return {"project_root": str(BASE_DIR), "var_dirs": var_dirs, "redis": {"host": redis.hostname, "port": redis.port},
            "postgres": postgres, "writes": writes}


def secrets_of_the_control_plane() -> list[str]:
    found = [settings.SECRET_KEY, settings.REDIS_URL, "REDIS_URL", "DATABASE_URL", "SECRET_KEY"]
    redis_password = urlsplit(settings.REDIS_URL).password
    if redis_password:
        found.append(redis_password)
    if connection.settings_dict.get("PASSWORD"):
        found.append(connection.settings_dict["PASSWORD"])
    return found


def probe_results(run: Run) -> dict[str, str]:
    results = {}
    for row in run.totals:
        if row["method"] == "PROBE":
            what, _, result = row["name"].partition(" => ")
            results.setdefault(what, result)
            if what == "env":
                results.setdefault("env:" + result.split("=", 1)[0], result)
    return results


def test_it_keeps_credentials_and_the_control_plane_out_of_reach_of_a_locustfile(cluster, target, alice, project):
    marker = f"probe-{uuid.uuid4().hex[:10]}"
    content = PROBE.format(targets=json.dumps(targets(marker))).encode()
    scenario = store_scenario(project, alice, name="Probe", content=content)
    before = target.counts().get(("GET", "/ok", 200), 0)
    run = services.start_run(scenario, user=alice, params={"users": 3, "spawn_rate": 100, "duration": 4, "slots": 1,
                                                           "host": target.url, "stop_timeout": 5})
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FINISHED, run.reason
    found = probe_results(run)
    assert "redis ping" in found, f"the probe never ran: {sorted(found)}"
    names = " ".join(row["name"] for row in run.totals)

    # Nothing secret travels out, whatever the probe read.
    for secret in secrets_of_the_control_plane():
        assert secret not in names, f"the locustfile saw {secret[:12]}…"
    # Its environment is its own (plus its slot index and count, for splitting test data);
    # /proc shows only its sandbox (bubblewrap's reaper and itself).
    assert set(k for k in found if k.startswith("env:")) <= {"env:PATH", "env:LANG", "env:LC_ALL", "env:TZ", "env:HOME",
                                                             "env:TMPDIR", "env:PWD", "env:MALLOC_ARENA_MAX",
                                                             "env:OPENBLAS_NUM_THREADS", "env:SWARMDECK_SLOT",
                                                             "env:SWARMDECK_SLOTS"}
    assert found["env:SWARMDECK_SLOT"] == "SWARMDECK_SLOT=0" and found["env:SWARMDECK_SLOTS"] == "SWARMDECK_SLOTS=1"
    assert found["env:HOME"] == f"HOME={sandbox.RUN_DIR}"
    assert json.loads(found["pids"]) == [1, 2]
    # No var/, no project root beyond the pool's own modules, no other slot's files.
    for folder in targets(marker)["var_dirs"]:
        assert found[f"list {folder}"].startswith("denied"), found[f"list {folder}"]
        assert found[f"read {folder}/secret_key"].startswith("denied")
        assert found[f"read {folder}/redis/password"].startswith("denied")
    listing = found["list project root"]
    assert listing.startswith("ok: ") and set(ast.literal_eval(listing[4:])) <= {".venv", "workers"}, listing
    # The sandbox's /tmp is its own; only a checkout or runtime that lives under /tmp (a clone in
    # /tmp, say) is bound into it, read-only, as far as the pool needs it.
    bound = sorted({f"/tmp/{path.relative_to('/tmp').parts[0]}" for path in sandbox._runtime_paths()
                    if path.is_relative_to("/tmp")})
    assert found["glob /tmp"] == f"ok: {bound}", found["glob /tmp"]
    # Redis answers on loopback, but not without the password the locustfile never sees.
    assert found["redis ping"].startswith("ok: '-NOAUTH"), found["redis ping"]
    if connection.settings_dict["ENGINE"].endswith("postgresql"):
        if not connection.settings_dict.get("PASSWORD"):
            pytest.fail("The test database accepts connections without a password: run with a DATABASE_URL that "
                        "has one (as .ci/run does), or the Postgres probe proves nothing.")
        assert found["postgres login"].startswith("denied: OperationalError"), found["postgres login"]
    # Writes land only in its own run directory (and its private /tmp, which vanishes with it).
    for path in targets(marker)["writes"]:
        if path == f"/tmp/{marker}.txt":
            assert found[f"write {path}"] == "ok: 'written'"
        else:
            assert found[f"write {path}"].startswith("denied"), path
        assert not Path(path).exists(), f"{path} was written on the worker's machine"
    assert found["write run dir"] == "ok: 'written'"
    # The ordinary users beside it counted exactly what nginx served.
    served = target.counts().get(("GET", "/ok", 200), 0) - before
    row = next(r for r in run.totals if r["method"] == "GET" and r["name"] == "/ok")
    assert row["requests"] == served > 0


ORPHANS = '''\
import os, signal, time
from locust import FastHttpUser, constant, task

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the pool itself ignores SIGTERM


def leave_a_detached_child():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.execvp("sleep", ["sleep", "{marker}"])
        os._exit(0)


class Sticky(FastHttpUser):
    wait_time = constant(0.05)

    def on_start(self):
        leave_a_detached_child()

    @task
    def ok(self):
        self.client.get("/ok")
'''


def processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if marker in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def test_it_leaves_no_process_of_a_run_behind(cluster, target, alice, project):
    marker = f"{3000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"  # a unique sleep length
    scenario = store_scenario(project, alice, name="Orphans", content=ORPHANS.format(marker=marker).encode())
    run = services.start_run(scenario, user=alice, params={"users": 2, "spawn_rate": 100, "duration": 3, "slots": 1,
                                                           "host": target.url, "stop_timeout": 1})
    deadline = time.monotonic() + 60
    while not processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(marker), "the locustfile's detached children never started"
    run = services.wait_until_done(run, timeout=60)
    assert run.status == Run.Status.FINISHED, run.reason
    assert (run.ended_at - run.started_at).total_seconds() < 3 + 1 + 10  # on time: duration + stop timeout + slack
    time.sleep(5)
    assert processes_with(marker) == []
    assert run.total_requests > 0
    # ... and no run directory: the slot removed its bundle when it ended.
    created = run.created_at.timestamp()
    left = [path for path in Path(tempfile.gettempdir()).glob(f"swarmdeck-run{run.pk}-slot*")
            if path.stat().st_mtime >= created - 1]
    assert left == []
