"""`make run`: Swarmdeck's whole stack on one machine, in the foreground.

Starts, in order: an embedded redis-server (when REDIS_URL is unset), migrations, the first
admin user (on a fresh install), then Daphne, one load worker, the collector, Celery beat and
the control worker (fires schedules, delivers webhooks) as children.
Their output is interleaved with a name prefix. Ctrl-C or SIGTERM stops every child (whole
process groups, so Celery's pool processes too); a child that dies stops the rest.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field

from controlcenter import embedded_redis
from controlcenter.env import BASE_DIR, BadSetting, envbool, envint, envstr, var_dir
from controlcenter.processes import die_with_parent, pid_alive, port_free

STOP_TIMEOUT = 15.0
READY_TIMEOUT = 90.0
# What a load worker may see of our environment: it needs Redis and nothing secret.
WORKER_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "REDIS_URL", "VAR_DIR", "SWARMDECK_LAUNCH_ID")

# ... and the sandbox's settings (limits, uids, bubblewrap's path).
WORKER_ENV_PREFIXES = ("SWARMDECK_POOL_", "SWARMDECK_SANDBOX_", "SWARMDECK_BWRAP")

_print_lock = threading.Lock()


def say(prefix: str, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{prefix:>9} | {line}\n")
        sys.stdout.flush()


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, cwd=BASE_DIR, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        for raw in iter(self.process.stdout.readline, b""):
            say(self.name, raw.decode("utf-8", "replace").rstrip())

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass


class Launcher:
    def __init__(self):
        self.var = var_dir()
        self.port = envint("PORT", 8000, minimum=1)
        self.bind = envstr("BIND", "127.0.0.1")
        self.launch_id = uuid.uuid4().hex
        self.children: list[Child] = []
        self.redis: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.pid_file = self.var / "launcher.pid"

    # -- start -------------------------------------------------------------------------
    def run(self) -> int:
        self.var.mkdir(parents=True, exist_ok=True)
        self._claim_pid_file()
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            env = self._base_env()
            if not port_free(self.port, self.bind):
                say("swarmdeck", f"Port {self.port} on {self.bind} is in use: stop what uses it, or set PORT.")
                return 2
            self._run_step("migrate", [sys.executable, "manage.py", "migrate", "--noinput", "-v", "1"], env)
            admin_line = self._run_step("bootstrap", [sys.executable, "manage.py", "bootstrap_admin"], env, echo=False)
            for child in self._children(env):
                self.children.append(child)
                child.start()
            if not self._wait_until_ready():
                return 0 if self.stopping.is_set() else 1
            self._banner(admin_line)
            self._isolation_notice()
            return self._supervise()
        except StartError as error:
            say("swarmdeck", str(error))
            return 1
        finally:
            self._stop_all()
            self.pid_file.unlink(missing_ok=True)

    def _claim_pid_file(self) -> None:
        if self.pid_file.exists():
            try:
                other = int(self.pid_file.read_text())
            except ValueError:
                other = 0
            if other and pid_alive(other) and other != os.getpid():
                say("swarmdeck", f"Swarmdeck is already running from {self.var} (pid {other}).")
                raise SystemExit(2)
        self.pid_file.write_text(str(os.getpid()))

    def _base_env(self) -> dict:
        env = dict(os.environ, PYTHONUNBUFFERED="1", SWARMDECK_LAUNCH_ID=self.launch_id, VAR_DIR=str(self.var))
        env.pop("DJANGO_SETTINGS_MODULE", None)
        if not env.get("SECRET_KEY"):
            key_file = self.var / "secret_key"
            if not key_file.exists():
                key_file.write_text(secrets.token_urlsafe(50))
                key_file.chmod(0o600)
        if not env.get("REDIS_URL"):
            self.redis, url = embedded_redis.start(self.var)
            shown = url.split("@", 1)[-1]
            say("redis", f"Embedded redis-server on {shown} (pid {self.redis.pid}), password in "
                         f"{self.var / 'redis' / 'password'}, data in {self.var / 'redis'}.")
            env["REDIS_URL"] = url
        return env

    def _run_step(self, name: str, argv: list[str], env: dict, echo: bool = True) -> str:
        result = subprocess.run(argv, cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            raise StartError(f"`{' '.join(argv[1:])}` failed (exit {result.returncode}):\n{output}")
        if echo:
            applied = [line.strip() for line in output.splitlines() if line.strip().startswith("Applying")]
            say(name, f"{len(applied)} migration(s) applied." if applied else "Database is up to date.")
        return output

    def _children(self, env: dict) -> list[Child]:
        python = sys.executable
        web_env = dict(env, DJANGO_SETTINGS_MODULE="controlcenter.settings")
        worker_env = {key: env[key] for key in env if key in WORKER_ENV_KEEP or key.startswith(WORKER_ENV_PREFIXES)}
        worker_env["PYTHONUNBUFFERED"] = "1"
        cores = str(os.cpu_count() or 1)
        host = socket.gethostname()
        return [
            Child("web", [python, "-m", "daphne", "-b", self.bind, "-p", str(self.port),
                          "--proxy-headers", "controlcenter.asgi:application"], web_env),
            Child("worker", [python, "-m", "celery", "-A", "controlcenter", "worker", "-Q", "loadgen", "-c", cores,
                             "-n", f"loadgen@{host}", "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
                  worker_env),
            Child("collector", [python, "manage.py", "collect"], web_env),
            Child("beat", [python, "-m", "celery", "-A", "controlcenter", "beat", "--loglevel", "INFO",
                           "--pidfile=", "-s", str(self.var / "celerybeat-schedule")], web_env),
            # Needs Django and the database (beat's schedule tasks, webhook deliveries): one process,
            # so two fires of a schedule never race past the overlap check.
            Child("control", [python, "-m", "celery", "-A", "controlcenter", "worker", "-Q", "control", "-c", "1",
                              "-n", f"control@{host}", "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
                  web_env),
        ]

    def _wait_until_ready(self) -> bool:
        url = f"http://{'127.0.0.1' if self.bind in ('0.0.0.0', '::') else self.bind}:{self.port}/healthz"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self.stopping.is_set():
            for child in self.children:
                if child.process.poll() is not None:
                    say("swarmdeck", f"{child.name} exited with code {child.process.returncode} while starting.")
                    return False
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        if not self.stopping.is_set():
            say("swarmdeck", f"The web server did not answer {url} within {READY_TIMEOUT:.0f} s.")
        return False

    def _banner(self, admin_line: str) -> None:
        shown = "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind
        lines = [f"Swarmdeck is running at http://{shown}:{self.port}/   (Ctrl-C stops everything)"]
        if admin_line.startswith("Created user admin with password: "):
            password = admin_line.rsplit(" ", 1)[1]
            lines += [
                f"First start: log in as  admin  with password  {password}",
                "This password is shown only once. Change it once logged in: "
                "your user name (top right) → Change password.",
            ]
        width = max(len(line) for line in lines) + 4
        say("swarmdeck", "=" * width)
        for line in lines:
            say("swarmdeck", f"  {line}")
        say("swarmdeck", "=" * width)
        (self.var / "launcher.json").write_text(json.dumps({
            "url": f"http://{shown}:{self.port}/", "launch_id": self.launch_id, "pid": os.getpid(),
            "children": {child.name: child.process.pid for child in self.children},
            "redis_pid": self.redis.pid if self.redis else None,
        }))

    def _isolation_notice(self) -> None:
        """Say it once, in the banner's place, when this machine cannot sandbox locustfiles."""
        from workers import sandbox

        isolation = sandbox.probe()
        if isolation.isolated:
            return
        required = envbool("SWARMDECK_REQUIRE_ISOLATION", not envbool("DEBUG", False))
        say("swarmdeck", f"Locustfiles cannot be isolated on this machine: {isolation.detail}.")
        if required:
            say("swarmdeck", "Runs are refused until you install it, or set SWARMDECK_REQUIRE_ISOLATION=0 to run "
                             "locustfiles unsandboxed (only if you trust everyone who can upload one).")

    # -- run and stop ---------------------------------------------------------------------
    def _supervise(self) -> int:
        while not self.stopping.wait(0.5):
            for child in self.children:
                if child.process.poll() is not None:
                    say("swarmdeck", f"{child.name} exited with code {child.process.returncode}; stopping the rest.")
                    return 1
            if self.redis and self.redis.poll() is not None:
                say("swarmdeck", f"The embedded redis-server exited with code {self.redis.returncode}; stopping.")
                return 1
        return 0

    def _on_signal(self, signum, frame) -> None:
        if self.stopping.is_set():
            say("swarmdeck", "Second signal: killing everything now.")
            for child in self.children:
                child.signal_group(signal.SIGKILL)
            return
        say("swarmdeck", f"Received {signal.Signals(signum).name}: stopping web, collector, worker, beat and control…")
        self.stopping.set()

    def _stop_all(self) -> None:
        started = [child for child in self.children if child.process]
        for child in started:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in started:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say("swarmdeck", f"{child.name} did not stop within {STOP_TIMEOUT:.0f} s: killing it.")
            # Pool processes or stragglers left in the group go too.
            child.signal_group(signal.SIGKILL)
            child.process.wait()
            if child.reader:
                child.reader.join(timeout=2)
        if self.redis:
            embedded_redis.stop(self.redis)
            say("redis", "Embedded redis-server stopped.")
        if started:
            say("swarmdeck", "All processes stopped.")


class StartError(RuntimeError):
    pass


def main() -> int:
    os.chdir(BASE_DIR)
    try:
        return Launcher().run()
    except BadSetting as error:
        say("swarmdeck", str(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
