"""The sandbox's pieces on their own: what it binds, its uids, its limits and how it names them."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from controlcenter.env import BASE_DIR
from workers import sandbox
from workers.limits import Limits

needs_sandbox = pytest.mark.skipif(not sandbox.probe().isolated, reason=f"no sandbox here: {sandbox.probe().detail}")


def _binds(argv: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for index, arg in enumerate(argv):
        if arg in ("--ro-bind", "--bind"):
            pairs.append((arg, argv[index + 1]))
    return pairs


def test_it_binds_only_the_runtime_the_workers_package_and_the_run_dir(tmp_path):
    argv = sandbox.build(tmp_path, Limits(), isolated=True, uid=None).argv
    binds = _binds(argv)
    writable = [source for kind, source in binds if kind == "--bind"]
    assert writable == [str(tmp_path)]
    project = [Path(source) for _, source in binds if Path(source).is_relative_to(BASE_DIR)]
    assert set(project) <= {BASE_DIR / "workers", BASE_DIR / ".venv"}, project
    assert str(BASE_DIR) not in [source for _, source in binds]
    assert not any("var" in Path(source).parts for _, source in binds)
    for flag in ("--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    assert "--unshare-net" not in argv  # targets stay reachable
    # The private /tmp comes first: a checkout or runtime under /tmp is bound on top of it, not hidden.
    tmpfs = argv.index("--tmpfs")
    assert argv[tmpfs + 1] == "/tmp" and all(argv.index(kind) > tmpfs for kind in ("--ro-bind", "--bind"))
    assert argv[argv.index("--chdir") + 1] == sandbox.RUN_DIR


def test_it_gives_the_user_code_no_credentials_in_its_environment(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:hunter2@db/x")
    monkeypatch.setenv("SECRET_KEY", "hunter2")
    env = sandbox.pool_env()
    assert "hunter2" not in repr(env)
    assert env["HOME"] == sandbox.RUN_DIR


def test_it_gives_each_running_slot_a_uid_of_its_own(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "UID_LOCKS", tmp_path / "uids")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("SWARMDECK_SANDBOX_UID", "3000000000")
    monkeypatch.setenv("SWARMDECK_SANDBOX_UIDS", "2")
    first, second = sandbox.SandboxUser().acquire(), sandbox.SandboxUser().acquire()
    assert {first.uid, second.uid} == {3000000000, 3000000001}
    with pytest.raises(RuntimeError, match="All 2 sandbox uids from 3000000000 are in use"):
        sandbox.SandboxUser().acquire()
    first.release()
    assert sandbox.SandboxUser().acquire().uid == 3000000000


def test_it_reads_limits_from_the_worker_environment(monkeypatch):
    monkeypatch.setenv("SWARMDECK_POOL_MEMORY_MB", "512")
    monkeypatch.setenv("SWARMDECK_POOL_PROCESSES", "32")
    monkeypatch.setenv("SWARMDECK_POOL_OPEN_FILES", "1000")
    monkeypatch.setenv("SWARMDECK_POOL_CPU_GRACE", "10")
    limits = Limits.from_env(duration=60, stop_timeout=5)
    assert (limits.memory_mb, limits.processes, limits.open_files, limits.cpu_seconds) == (512, 32, 1000, 75)
    assert Limits.from_env(duration=0).cpu_seconds == 0  # a run without a duration runs until stopped
    assert Limits.from_json(limits.to_json()) == limits
    monkeypatch.setenv("SWARMDECK_POOL_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match="SWARMDECK_POOL_MEMORY_MB='lots' is not an integer"):
        Limits.from_env()


def test_it_names_the_limit_a_sandbox_ran_into():
    limits = Limits(memory_mb=100, processes=10, open_files=50, cpu_seconds=30)
    assert sandbox.exceeded(sandbox.Usage(processes=3, rss_mb=50, max_fds=10, cpu_seconds=1), limits) is None
    assert sandbox.exceeded(sandbox.Usage(rss_mb=100), limits) == \
        "the locustfile exceeded its 100 MiB memory limit (killed)"
    assert sandbox.exceeded(sandbox.Usage(processes=9), limits) == \
        "the locustfile reached its limit of 10 processes and threads (killed)"
    assert sandbox.exceeded(sandbox.Usage(max_fds=49), limits) == \
        "the locustfile reached its limit of 50 open files (killed)"
    assert sandbox.exceeded(sandbox.Usage(cpu_seconds=30), limits) == \
        "the locustfile used up its 30 s CPU-time limit (killed)"
    assert sandbox.explain_exit(128 + signal.SIGXCPU, sandbox.Usage(), limits) == \
        "the locustfile used up its 30 s CPU-time limit (killed)"
    assert sandbox.explain_exit(-signal.SIGKILL, sandbox.Usage(pool_vms_mb=95), limits) == \
        "the locustfile exceeded its 100 MiB memory limit (killed)"
    assert sandbox.explain_exit(1, sandbox.Usage(pool_vms_mb=95), limits) is None
    assert sandbox.signal_of(-9) == 9 and sandbox.signal_of(137) == 9 and sandbox.signal_of(3) is None


def test_it_says_why_there_is_no_sandbox_without_bubblewrap(tmp_path):
    env = {**os.environ, "SWARMDECK_BWRAP": "/nonexistent/bwrap", "PYTHONPATH": str(BASE_DIR)}
    result = subprocess.run(
        [os.sys.executable, "-c", "from workers import sandbox; print(sandbox.probe())"],
        env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert "isolated=False" in result.stdout
    assert "bubblewrap (bwrap) is not installed: install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)" \
        in result.stdout


@needs_sandbox
def test_it_runs_python_in_the_sandbox_as_an_unprivileged_user_in_its_own_pid_namespace(tmp_path):
    user = sandbox.SandboxUser().acquire()
    try:
        sandbox.prepare_run_dir(tmp_path, user.uid)
        command = sandbox.build(tmp_path, Limits(), isolated=True, uid=user.uid)
        position = command.argv.index("-c") + 1
        command.argv[position] = sandbox.BOOT_LIMITS + (
            "import os, resource; print(os.getuid(), os.getgid(), os.getgroups(), sorted(os.listdir('/')), "
            "resource.getrlimit(resource.RLIMIT_NOFILE)[0], open('/proc/self/status').read().count('NoNewPrivs:\\t1'),"
            " sorted(p for p in os.listdir('/proc') if p.isdigit()))")
        process = sandbox.start(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate(timeout=30)
    finally:
        user.release()
    assert process.returncode == 0, err
    uid, gid, groups, *rest = out.decode().split(" ", 3)
    expected = user.uid if user.uid is not None else os.geteuid()
    assert int(uid) == expected != 0 and int(gid) != 0 and groups == "[]"
    assert "'var'" not in rest[0] and "'home'" not in rest[0]
    assert "10240 1 ['1', '2']" in rest[0]
