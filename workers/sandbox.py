"""The pool's sandbox: bubblewrap namespaces, an unprivileged user, read-only binds, limits.

A locustfile is code from any member of any project, run on machines every project shares.
The slot starts its pool through bubblewrap (`bwrap`):

- new user, PID, IPC, UTS and cgroup namespaces; the host's network (targets stay reachable);
- as an unprivileged user: the worker's own, or SWARMDECK_SANDBOX_UID (65534, nobody) when
  the worker runs as root; no capabilities, no nested user namespaces;
- a root file system of read-only binds of exactly what the pool needs (the system's /usr,
  the Python runtime, its site-packages, the `workers` package and a few files of /etc for
  name resolution and certificates), a private memory-backed /tmp, and the slot's own run
  directory (the unpacked bundle) writable as cwd and HOME at RUN_DIR;
- nothing else: no `var/`, no project root, no other slot's files, no /proc of other processes;
- `--die-with-parent` and PID namespace teardown: when the pool exits or the slot kills the
  sandbox, every process the locustfile started dies with it, `setsid` or not.

Where bubblewrap or user namespaces are missing, `probe()` says why and the slot runs the
pool as a plain child process ("not isolated"): the worker logs it loudly and registers so.
Needs nothing of Django, runs/ or scenarios/, and never imports locust.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from workers.limits import MIB, Limits

PACKAGE_DIR = Path(__file__).resolve().parent          # the `workers` package: the pool's own modules
RUN_DIR = "/mnt/locust"                                  # where the bundle is, inside the sandbox
ETC_FILES = ("resolv.conf", "hosts", "nsswitch.conf", "host.conf", "gai.conf", "services", "protocols",
             "passwd", "group", "localtime", "ld.so.cache", "mime.types")
ETC_DIRS = ("ssl/certs", "ca-certificates", "alternatives")
TOP_LINKS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
DEFAULT_UID = 2_100_000_000                              # far above any account a system has
DEFAULT_UIDS = 256
UID_LOCKS = Path(tempfile.gettempdir()) / "swarmdeck-sandbox-uids"
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"
POOL_ENV_KEEP = ("LANG", "LC_ALL", "TZ")

# The pool's first lines, before any user code: find its modules, apply its limits, run it.
BOOT_LIMITS = "import sys; sys.path.insert(0, sys.argv[1]); from workers import limits; limits.boot(sys.argv[2]); "
BOOT = BOOT_LIMITS + ("import runpy; sys.argv = ['workers.pool']; "
                      "runpy.run_module('workers.pool', run_name='__main__', alter_sys=True)")
PROBE = BOOT_LIMITS + "import os; print('sandbox-ok', os.getuid(), len(os.listdir('/proc')))"


@dataclass(frozen=True)
class Isolation:
    isolated: bool
    detail: str   # how ("bubblewrap 0.8.0, uid 65534") or why not, in words

    def as_dict(self) -> dict:
        return {"isolated": self.isolated, "isolation": self.detail}

    @property
    def remedy(self) -> str:
        """What to do about it, in words."""
        if self.isolated:
            return ""
        if "not installed" in self.detail:
            return f"{INSTALL_HINT[0].upper()}{INSTALL_HINT[1:]} and restart the worker"
        return "Make bubblewrap work on that machine (see the reason above) and restart the worker"


def bwrap_binary() -> str | None:
    """SWARMDECK_BWRAP (a path or a name on PATH), else `bwrap` on PATH."""
    name = os.environ.get("SWARMDECK_BWRAP") or "bwrap"
    return shutil.which(name)


def sandbox_ids() -> tuple[int, int] | None:
    """The uid range a root worker gives its sandboxes (one uid per running slot); None when
    the worker is not root: the sandbox then runs as the worker's own user, in a user namespace."""
    if os.geteuid() != 0:
        return None
    first = int(os.environ.get("SWARMDECK_SANDBOX_UID") or DEFAULT_UID)
    count = int(os.environ.get("SWARMDECK_SANDBOX_UIDS") or DEFAULT_UIDS)
    return first, max(1, count)


class SandboxUser:
    """A uid of its own for one slot's sandbox (so process limits are per slot), held by flock
    until the slot ends. Everything that ran as it died with the sandbox's PID namespace."""

    def __init__(self):
        self.uid: int | None = None
        self._fd: int | None = None

    def acquire(self) -> SandboxUser:
        ids = sandbox_ids()
        if ids is None:
            return self
        first, count = ids
        UID_LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in range(first, first + count):
            fd = os.open(UID_LOCKS / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return self
        raise RuntimeError(f"All {count} sandbox uids from {first} are in use: raise SWARMDECK_SANDBOX_UIDS.")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def pool_env(extra: dict | None = None) -> dict:
    """What user code sees of the environment: no Redis, database or Django secrets."""
    env = {key: os.environ[key] for key in POOL_ENV_KEEP if key in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    env.setdefault("LANG", "C.UTF-8")
    env["HOME"] = RUN_DIR
    env["TMPDIR"] = "/tmp"
    # Fewer reserved arenas and BLAS threads: the address-space limit measures what is used.
    env["MALLOC_ARENA_MAX"] = "2"
    env["OPENBLAS_NUM_THREADS"] = "1"
    env.update(extra or {})
    return env


def _runtime_paths() -> list[Path]:
    """Directories the pool's Python needs, read-only: runtime, site-packages, our package."""
    wanted = [Path(sys.base_prefix), Path(sys.prefix), *(Path(p) for p in site.getsitepackages()), PACKAGE_DIR]
    paths: list[Path] = []
    for path in wanted:
        path = path.resolve()
        if not path.exists() or path in paths:
            continue
        paths.append(path)
    # A path inside another one (or inside /usr) is bound with it.
    usr = Path("/usr")
    kept = [p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths) and not p.is_relative_to(usr)]
    # sys.executable may be a symlink (a venv's python) into the runtime: both are bound.
    return sorted(kept, key=lambda p: len(p.parts))


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in TOP_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for name in ETC_DIRS:
        if (Path("/etc") / name).is_dir():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


@dataclass
class Command:
    argv: list[str]
    env: dict
    cwd: str


def _boot_argv(limits: Limits, modules_root: str, uid: int | None, python: Path | None = None) -> list[str]:
    boot = {"limits": limits.to_json(), "uid": uid}
    return [str(python or sys.executable), "-I", "-u", "-B", "-c", BOOT, modules_root, json.dumps(boot)]


def build(run_dir: Path, limits: Limits, *, isolated: bool, uid: int | None = None,
          venv: Path | None = None) -> Command:
    """The command that starts `workers.pool` for a slot whose bundle is in run_dir.

    With `venv` (the bundle's requirements, workers.venvs) the pool runs that environment's
    Python, which sees its packages and, after them, Swarmdeck's; it is bound read-only.

    As root, bubblewrap sets up the namespaces with root's rights (it can bind a runtime under
    /root) and the pool's first lines drop to `uid` before any user code runs. Otherwise
    bubblewrap runs in a user namespace as the worker's own user.
    """
    modules_root = str(PACKAGE_DIR.parent)
    if not isolated:
        unconfined = Limits(**{**limits.__dict__, "absolute_processes": False})
        env = pool_env({"HOME": str(run_dir), "TMPDIR": str(run_dir)})
        python = venv / "bin" / "python" if venv else None
        return Command(argv=_boot_argv(unconfined, modules_root, None, python), env=env, cwd=str(run_dir))
    args = [bwrap_binary() or "bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "swarmdeck-pool"]
    if uid is not None:
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--disable-userns"]
    # The private /tmp first: a runtime or checkout under /tmp is then bound on top of it.
    args += ["--perms", "1777", "--size", str(limits.tmp_mb * MIB), "--tmpfs", "/tmp"]
    args += _system_binds()
    made: set[Path] = set()
    for path in [*_runtime_paths(), *([venv.resolve()] if venv else [])]:
        # Parents as plain 0755 directories: bubblewrap would copy a host mode such as /root's 0700.
        for parent in reversed(path.parents[:-1]):
            if parent not in made and parent != Path("/tmp"):
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(path), str(path)]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "0755", "--dir", str(Path(RUN_DIR).parent), "--bind", str(run_dir), RUN_DIR,
             "--chdir", RUN_DIR, "--clearenv"]
    env = pool_env()
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--", *_boot_argv(limits, modules_root, uid, venv / "bin" / "python" if venv else None)]
    return Command(argv=args, env=env, cwd="/")


def prepare_run_dir(run_dir: Path, uid: int | None) -> None:
    """Make the unpacked bundle the sandbox user's: files readable, the directory writable."""
    run_dir.chmod(0o711)  # bubblewrap (root without capabilities) must enter it; nobody may list it
    if uid is None:
        return
    for root, dirs, files in os.walk(run_dir):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), uid, uid)
    os.chown(run_dir, uid, uid)


def start(command: Command, **popen) -> subprocess.Popen:
    return subprocess.Popen(command.argv, cwd=command.cwd, env=command.env, start_new_session=True, **popen)


# -- is this machine able to isolate? ---------------------------------------------------------

@functools.lru_cache(maxsize=1)
def probe() -> Isolation:
    """Start a sandboxed Python once, as a slot would; cached for the process."""
    binary = bwrap_binary()
    if binary is None:
        return Isolation(False, f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}")
    run_dir = Path(tempfile.mkdtemp(prefix="swarmdeck-probe-"))
    user = SandboxUser()
    try:
        user.acquire()
        prepare_run_dir(run_dir, user.uid)
        command = build(run_dir, Limits(), isolated=True, uid=user.uid)
        position = command.argv.index("-c") + 1
        command.argv[position] = PROBE
        try:
            process = start(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = process.communicate(timeout=30)
        except (OSError, subprocess.TimeoutExpired) as error:
            return Isolation(False, f"bubblewrap could not start a sandbox: {error}")
        if process.returncode != 0 or b"sandbox-ok" not in out:
            first = (err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[0]
            hint = " (user namespaces are unavailable here?)" if "namespace" in first.lower() else ""
            return Isolation(False, f"bubblewrap could not start a sandbox: {first}{hint}")
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
        ids = sandbox_ids()
        who = f"uids {ids[0]}+" if ids else f"uid {os.geteuid()} in a user namespace"
        return Isolation(True, f"{version or 'bubblewrap'}, {who}")
    except (OSError, RuntimeError) as error:
        return Isolation(False, f"the sandbox could not be prepared: {error}")
    finally:
        user.release()
        shutil.rmtree(run_dir, ignore_errors=True)


# -- watching and killing from outside ----------------------------------------------------------

@dataclass
class Usage:
    processes: int = 0      # tasks (processes and threads) inside the sandbox
    rss_mb: float = 0.0     # resident memory of every process inside
    max_fds: int = 0        # open files of the process with the most
    cpu_seconds: float = 0.0  # CPU time of the process that used the most
    pool_vms_mb: float = 0.0


def _inside(root_pid: int, isolated: bool) -> list[psutil.Process]:
    """The processes started by the sandbox (bubblewrap's own two excluded)."""
    try:
        root = psutil.Process(root_pid)
        found = root.children(recursive=True)
    except psutil.Error:
        return []
    if not isolated:
        return [root, *found]
    return [p for p in found if _name(p) != "bwrap"]


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""


def usage(root_pid: int, isolated: bool) -> Usage:
    """What the sandbox uses now. Memory is resident memory, counted proportionally (PSS) once
    there are several processes, so forked children are not charged for the pages they share."""
    result = Usage()
    inside = _inside(root_pid, isolated)
    shared = len(inside) > 1
    for process in inside:
        try:
            with process.oneshot():
                memory = process.memory_info()
                times = process.cpu_times()
                result.processes += process.num_threads()
                result.rss_mb += (process.memory_full_info().pss if shared else memory.rss) / MIB
                result.max_fds = max(result.max_fds, process.num_fds())
                result.cpu_seconds = max(result.cpu_seconds, times.user + times.system)
                result.pool_vms_mb = max(result.pool_vms_mb, memory.vms / MIB)
        except psutil.Error:
            continue
    return result


def exceeded(used: Usage, limits: Limits) -> str | None:
    """The limit the sandbox ran into, in words, or None."""
    if used.processes >= limits.processes - 1:
        return f"the locustfile reached its limit of {limits.processes} processes and threads (killed)"
    if used.max_fds >= limits.open_files - 1:
        return f"the locustfile reached its limit of {limits.open_files} open files (killed)"
    if used.rss_mb >= limits.memory_mb:
        return f"the locustfile exceeded its {limits.memory_mb} MiB memory limit (killed)"
    if limits.cpu_seconds and used.cpu_seconds >= limits.cpu_seconds:
        return f"the locustfile used up its {limits.cpu_seconds} s CPU-time limit (killed)"
    return None


def signal_of(code: int | None) -> int | None:
    """The signal that ended the pool: Popen says -N; bubblewrap passes its child's death on as 128 + N."""
    if code is None:
        return None
    if code < 0:
        return -code
    if 128 < code < 128 + signal.NSIG:
        return code - 128
    return None


def explain_exit(code: int | None, last: Usage, limits: Limits) -> str | None:
    """Why a pool died of a signal, when a limit explains it."""
    signum = signal_of(code)
    if signum is None:
        return None
    if signum == signal.SIGXCPU or (limits.cpu_seconds and last.cpu_seconds >= limits.cpu_seconds - 1):
        return f"the locustfile used up its {limits.cpu_seconds} s CPU-time limit (killed)"
    if last.pool_vms_mb >= 0.9 * limits.memory_mb or last.rss_mb >= 0.9 * limits.memory_mb:
        return f"the locustfile exceeded its {limits.memory_mb} MiB memory limit (killed)"
    return None


def kill_tree(process: subprocess.Popen, isolated: bool, timeout: float = 5.0) -> None:
    """Kill the pool and everything it started. Isolated: killing bubblewrap tears the PID
    namespace down. Unisolated: the process group and every descendant still known (best effort)."""
    stragglers = [] if isolated else _inside(process.pid, isolated=False)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in stragglers:
        try:
            child.kill()
        except psutil.Error:
            pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + timeout
    while isolated and time.monotonic() < deadline and _inside_alive(process.pid):
        time.sleep(0.05)


def _inside_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
