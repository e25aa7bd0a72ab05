"""A real HTTP target for tests and benchmarks: nginx on loopback, counting what it served.

Same endpoints as bench/target.sh: /ok (any method) /json /static10k /delay/1ms /delay/10ms
/delay/100ms /status/500, plus /delay/12ms (/delay/10ms made 20% slower, for bench/aa_false_alarms.py)
and /slot/<anything> (200, for tests that encode what a slot saw in the path). The access log has
one "METHOD URI STATUS" line per request; `counts()` flushes it (USR1 reopens the log, which writes
nginx's buffer) and tallies it.
A second log has the same lines with the time each request was served (`served_at()`).
Needs the Debian packages nginx and libnginx-mod-http-echo (installed here when missing, as root).
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NGINX = "/usr/sbin/nginx"
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"

CONF = """\
load_module {echo};
worker_processes 1;
daemon on;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
  log_format count '$request_method $uri $status';
  access_log {dir}/logs/access.log count buffer=64k flush=1s;
  log_format timed '$msec $request_method $uri $status';
  access_log {dir}/logs/timed.log timed buffer=64k flush=1s;
  client_body_temp_path {dir}/tmp/body; proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi; uwsgi_temp_path {dir}/tmp/uwsgi; scgi_temp_path {dir}/tmp/scgi;
  keepalive_requests 1000000; keepalive_timeout 65; sendfile on;
  server {{
    listen 127.0.0.1:{port};
    location = /ok {{ default_type text/plain; return 200 "ok\\n"; }}
    location = /json {{ default_type application/json; return 200 '{{"ok": true}}'; }}
    location = /static10k {{ alias {dir}/html/static10k; }}
    location = /delay/1ms {{ default_type text/plain; echo_sleep 0.001; echo ok; }}
    location = /delay/10ms {{ default_type text/plain; echo_sleep 0.01; echo ok; }}
    location = /delay/12ms {{ default_type text/plain; echo_sleep 0.012; echo ok; }}
    location = /delay/100ms {{ default_type text/plain; echo_sleep 0.1; echo ok; }}
    location = /status/500 {{ default_type text/plain; return 500 "boom\\n"; }}
    location ^~ /slot/ {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
}}
"""


def ensure_nginx() -> None:
    if os.path.exists(NGINX) and os.path.exists(ECHO_MODULE):
        return
    if os.geteuid() != 0:
        raise RuntimeError("nginx and libnginx-mod-http-echo are missing: "
                           "apt-get install nginx libnginx-mod-http-echo (as root).")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx", "libnginx-mod-http-echo"], check=True, env=env,
                   capture_output=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Target:
    def __init__(self, port: int, directory: Path, owns_dir: bool):
        self.port = port
        self.dir = directory
        self.owns_dir = owns_dir
        self.url = f"http://127.0.0.1:{port}"
        self.log = directory / "logs" / "access.log"
        self.timed_log = directory / "logs" / "timed.log"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.dir / "nginx.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def flush(self) -> None:
        pid = self.pid
        if pid:
            try:
                os.kill(pid, signal.SIGUSR1)  # reopen the log: nginx writes its buffer first
            except ProcessLookupError:
                return
        # the worker writes its buffer when it reopens the log: wait until the size settles
        previous, deadline = -1, time.monotonic() + 2.0
        time.sleep(0.1)
        while time.monotonic() < deadline:
            size = self.log.stat().st_size if self.log.exists() else 0
            if size == previous:
                return
            previous = size
            time.sleep(0.15)

    def lines(self) -> list[tuple[str, str, int]]:
        """Every request served so far, in order: (method, uri, status)."""
        self.flush()
        served = []
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3:
                    served.append((parts[0], parts[1], int(parts[2])))
        return served

    def served_at(self) -> list[tuple[float, str, str, int]]:
        """Every request served so far with when it was served: (time, method, uri, status); the time is
        nginx's $msec, the wall clock in seconds to the millisecond, when the response was sent."""
        self.flush()
        served = []
        if self.timed_log.exists():
            for line in self.timed_log.read_text().splitlines():
                parts = line.split()
                if len(parts) == 4:
                    served.append((float(parts[0]), parts[1], parts[2], int(parts[3])))
        return served

    def counts(self) -> dict[tuple[str, str, int], int]:
        return dict(collections.Counter(self.lines()))

    def total(self) -> int:
        return sum(self.counts().values())

    def reset(self) -> None:
        """Forget what was served so far (truncate the log)."""
        self.flush()
        for log in (self.log, self.timed_log):
            with open(log, "w"):
                pass

    def stop(self) -> None:
        pid = self.pid
        if pid:
            try:
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def start(port: int | None = None, dir: str | os.PathLike | None = None) -> Target:  # noqa: A002 - like target.sh
    ensure_nginx()
    owns = dir is None
    directory = Path(dir) if dir is not None else Path(tempfile.mkdtemp(prefix="swarmdeck-target-"))
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # nginx workers (an unprivileged user) read html/
    for sub in ("logs", "tmp", "html"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (directory / "html" / "static10k").write_bytes(b"x" * 10240)
    (directory / "logs" / "access.log").write_bytes(b"")
    (directory / "logs" / "timed.log").write_bytes(b"")
    port = port or free_port()
    (directory / "nginx.conf").write_text(CONF.format(echo=ECHO_MODULE, dir=directory, port=port))
    result = subprocess.run([NGINX, "-c", str(directory / "nginx.conf"), "-p", str(directory)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nginx did not start: {result.stderr.strip()}")
    target = Target(port, directory, owns)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return target
        except OSError:
            time.sleep(0.05)
    target.stop()
    raise RuntimeError(f"nginx did not listen on port {port} within 10 s.")
