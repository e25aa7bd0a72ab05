"""`make run`: Swarmdeck's whole stack on one machine, in the foreground.

Starts, in order: an embedded redis-server (when REDIS_URL is unset), migrations, the first
admin user (on a fresh install), then Daphne, one load worker, the collector (one per shard with
SWARMDECK_COLLECTOR_SHARDS), Celery beat and
the control worker (fires schedules, delivers webhooks) as children.
Their output is interleaved with a name prefix. Ctrl-C or SIGTERM stops every child (whole
process groups, so Celery's pool processes too), then the embedded redis-server, last: every
child and the server have sessions of their own, so a terminal's Ctrl-C reaches only the launcher.

Supervision: a child (or the embedded redis-server) that dies once the stack is up is restarted
after a capped backoff (1 s, 2 s, 4 s … SWARMDECK_RESTART_BACKOFF_MAX, 30 s); one that dies
SWARMDECK_RESTART_LIMIT times (5) within SWARMDECK_RESTART_WINDOW seconds (60) stops everything,
with its last lines. var/launcher.json always holds the current pids.
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
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from controlcenter import embedded_redis
from controlcenter.env import BASE_DIR, BadSetting, envbool, envint, envstr, var_dir
from controlcenter.processes import die_with_parent, pid_alive, port_free

STOP_TIMEOUT = 15.0
READY_TIMEOUT = 90.0
FIRST_BACKOFF = 1.0  # seconds before the first restart of a process that died; doubles per recent death
TAIL_LINES = 10      # of a process's output, shown when it keeps dying
# What a load worker may see of our environment: it needs Redis and nothing secret.
WORKER_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "REDIS_URL", "VAR_DIR",
                   "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")

# ... and the worker's settings (sandbox limits, uids, bubblewrap's path, control timeout, outbox,
# requirements cache: none of them secret) and pip's own configuration (index, find-links, certs).
WORKER_ENV_PREFIXES = ("SWARMDECK_", "PIP_")
WORKER_ENV_DENY = ("SWARMDECK_TOKEN",)  # an API key for the CLI, if the shell has one

_print_lock = threading.Lock()


def worker_environment(env: dict) -> dict:
    """What the load worker gets of `env`: Redis, its own and pip's settings; no database, no secret."""
    kept = {key: value for key, value in env.items() if key not in WORKER_ENV_DENY
            and (key in WORKER_ENV_KEEP or key.startswith(WORKER_ENV_PREFIXES))}
    return {**kept, "PYTHONUNBUFFERED": "1"}


def say(prefix: str, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{prefix:>9} | {line}\n")
        sys.stdout.flush()


@dataclass
class Restarts:
    """The recent deaths of one supervised process: when to restart it, and when to give up."""

    limit: int
    window: float
    backoff_max: float
    deaths: deque = field(default_factory=deque)
    count: int = 0               # restarts so far
    due: float | None = None     # monotonic time of the pending restart

    @classmethod
    def from_env(cls) -> "Restarts":
        return cls(limit=envint("SWARMDECK_RESTART_LIMIT", 5, minimum=1),
                   window=float(envint("SWARMDECK_RESTART_WINDOW", 60, minimum=1)),
                   backoff_max=float(envint("SWARMDECK_RESTART_BACKOFF_MAX", 30, minimum=1)))

    def died(self, now: float) -> float | None:
        """Count a death; the delay before the restart, or None when it died `limit` times within `window`."""
        self.deaths.append(now)
        while now - self.deaths[0] > self.window:
            self.deaths.popleft()
        if len(self.deaths) >= self.limit:
            return None
        self.count += 1
        delay = min(self.backoff_max, FIRST_BACKOFF * 2 ** (len(self.deaths) - 1))
        self.due = now + delay
        return delay


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)
    restarts: Restarts = field(default_factory=Restarts.from_env, repr=False)
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES), repr=False)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, cwd=BASE_DIR, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )
        self.reader = threading.Thread(target=self._pump, args=(self.process,), daemon=True)
        self.reader.start()

    def _pump(self, process: subprocess.Popen) -> None:
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self.tail.append(line)
            say(self.name, line)
        process.stdout.close()

    def reap(self) -> None:
        """After the main process died: kill what is left of its group, and read its last output."""
        self.signal_group(signal.SIGKILL)
        if self.reader:
            self.reader.join(timeout=2)

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
        self.redis_url: str | None = None
        self.redis_restarts = Restarts.from_env()
        self.stopping = threading.Event()
        self.pid_file = self.var / "launcher.pid"

    # -- start -------------------------------------------------------------------------
    def run(self) -> int:
        self.var.mkdir(parents=True, exist_ok=True)
        self.var.chmod(0o700)  # the database, the Redis password and the secret key live here
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
        # `make run` is the development stack: runs may target loopback without an allow-list entry.
        env.setdefault("SWARMDECK_ALLOW_LOOPBACK_TARGETS", "1")
        if not env.get("SECRET_KEY"):
            key_file = self.var / "secret_key"
            if not key_file.exists():
                key_file.write_text(secrets.token_urlsafe(50))
                key_file.chmod(0o600)
        if not env.get("REDIS_URL"):
            self.redis, url = embedded_redis.start(self.var)
            self.redis_url = url
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
        worker_env = worker_environment(env)
        cores = str(os.cpu_count() or 1)
        host = socket.gethostname()
        return [
            Child("web", [python, "-m", "daphne", "-b", self.bind, "-p", str(self.port),
                          "--proxy-headers", "controlcenter.asgi:application"], web_env),
            Child("worker", [python, "-m", "celery", "-A", "controlcenter", "worker", "-Q", "loadgen", "-c", cores,
                             "-n", f"loadgen@{host}", "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
                  worker_env),
            # One collector per shard (SWARMDECK_COLLECTOR_SHARDS, runs/shards.py): each takes a free one.
            *[Child("collector" if k == 0 else f"collector-{k}",
                    [python, "manage.py", "collect", *([] if k == 0 else ["--consumer", f"collector-{host}-{k}"])],
                    web_env) for k in range(envint("SWARMDECK_COLLECTOR_SHARDS", 1, minimum=1, maximum=64))],
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
        self._write_state()

    def _write_state(self) -> None:
        """var/launcher.json: where the stack runs and its current pids (rewritten after each restart)."""
        shown = "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind
        state = self.var / "launcher.json"
        partial = state.with_suffix(".json.tmp")
        partial.write_text(json.dumps({
            "url": f"http://{shown}:{self.port}/", "launch_id": self.launch_id, "pid": os.getpid(),
            "children": {child.name: child.process.pid for child in self.children},
            "redis_pid": self.redis.pid if self.redis else None,
        }))
        os.replace(partial, state)  # readers never see half a file

    def _isolation_notice(self) -> None:
        """Say it once, in the banner's place, when this machine cannot sandbox locustfiles."""
        from workers import sandbox

        isolation = sandbox.probe()
        if isolation.isolated:
            return
        required = envbool("SWARMDECK_REQUIRE_ISOLATION", not envbool("DEBUG", False))
        say("swarmdeck", f"Locustfiles cannot be isolated on this machine: {isolation.detail}.")
        if required:
            say("swarmdeck", f"{isolation.remedy}; until then runs are refused. Or set SWARMDECK_REQUIRE_ISOLATION=0 "
                             "to run locustfiles unsandboxed (only if you trust everyone who can upload one).")

    # -- run and stop ---------------------------------------------------------------------
    def _supervise(self) -> int:
        """Restart what dies, with backoff; 0 once stopped by a signal, 1 when something keeps dying."""
        while not self.stopping.wait(self._next_wait()):
            now = time.monotonic()
            if self.redis and (code := self._redis_step(now)) is not None:
                return code
            for child in self.children:
                if child.restarts.due is None and child.process.poll() is not None:
                    child.reap()
                    delay = child.restarts.died(now)
                    if delay is None:
                        self._give_up(child.name, child.restarts, list(child.tail))
                        return 1
                    say("swarmdeck", f"{child.name} exited with code {child.process.returncode}; restarting it in "
                                     f"{delay:g} s (restart {child.restarts.count}).")
                elif child.restarts.due is not None and now >= child.restarts.due:
                    child.restarts.due = None
                    try:
                        child.start()
                    except OSError as error:
                        say("swarmdeck", f"Could not restart {child.name}: {error}; stopping everything.")
                        return 1
                    self._write_state()
        return 0

    def _next_wait(self) -> float:
        """Look every 0.5 s, or at the next pending restart if it is sooner."""
        dues = [restarts.due for restarts in [self.redis_restarts, *(child.restarts for child in self.children)]
                if restarts.due is not None]
        return max(0.05, min([0.5, *(due - time.monotonic() for due in dues)]))

    def _redis_step(self, now: float) -> int | None:
        """The embedded redis-server: restarted on its port (the children's REDIS_URL names it), or stop."""
        restarts = self.redis_restarts
        if restarts.due is None:
            if self.redis.poll() is None:
                return None
            delay = restarts.died(now)
            if delay is None:
                self._give_up("The embedded redis-server", restarts, self._redis_log_tail())
                return 1
            say("swarmdeck", f"The embedded redis-server exited with code {self.redis.returncode}; restarting it "
                             f"in {delay:g} s (restart {restarts.count}).")
            return None
        if now < restarts.due:
            return None
        restarts.due = None
        port = urlsplit(self.redis_url).port
        if not port_free(port):
            say("swarmdeck", f"The embedded redis-server cannot get its port {port} back (something else took it), "
                             "and every process here knows Redis by that port; stopping everything.")
            return 1
        try:
            self.redis, url = embedded_redis.start(self.var)
        except embedded_redis.EmbeddedRedisError as error:
            say("swarmdeck", f"The embedded redis-server could not be restarted: {error}\nStopping everything.")
            return 1
        if url != self.redis_url:  # lost the port in between: the children could not reach it
            embedded_redis.stop(self.redis)
            say("swarmdeck", f"The embedded redis-server came back on another port than {port}; stopping everything.")
            return 1
        say("redis", f"Embedded redis-server restarted on port {port} (pid {self.redis.pid}), same data and password.")
        self._write_state()
        return None

    def _redis_log_tail(self) -> list[str]:
        log = self.var / "redis" / "redis.log"
        try:
            return log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        except OSError:
            return []

    def _give_up(self, name: str, restarts: Restarts, tail: list[str]) -> None:
        shown = [line for line in tail if line.strip()]
        say("swarmdeck", f"{name} died {len(restarts.deaths)} times within {restarts.window:g} s; stopping everything."
                         + (" Its last lines:" if shown else " It printed nothing."))
        for line in shown:
            say("swarmdeck", f"    {line}")

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
