"""Resource limits of one pool, applied by the pool's own first lines before any user code runs.

Pure data and `resource` calls: no Django, no locust. The slot builds a `Limits`, passes it
to the pool as JSON on its command line, and the pool applies it to itself (inside the
sandbox's user namespace, so the process limit counts only the sandbox's own processes).
The slot also watches the sandbox from outside and names the limit that stopped it.
"""

from __future__ import annotations

import json
import os
import resource
from dataclasses import asdict, dataclass

MIB = 1024 * 1024
CPU_HARD_EXTRA = 5  # seconds between SIGXCPU (soft) and SIGKILL (hard)


def _env_int(name: str, default: int, minimum: int = 1) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer.") from None
    if number < minimum:
        raise ValueError(f"{name}={value!r} must be at least {minimum}.")
    return number


@dataclass(frozen=True)
class Limits:
    """What one slot's pool may use. A normal FastHttpUser run never reaches the defaults."""

    memory_mb: int = 2048          # address space of each process, and resident memory of the whole sandbox
    processes: int = 256           # processes and threads of the sandbox
    open_files: int = 10240        # per process (Locust asks for 10,000)
    cpu_seconds: int = 0           # CPU time of each process; 0 = no limit (a run without a duration)
    tmp_mb: int = 256              # the private /tmp (memory-backed)
    absolute_processes: bool = True  # False outside a user namespace: the count would include the worker's own

    @classmethod
    def from_env(cls, duration: float = 0.0, stop_timeout: float = 0.0) -> Limits:
        """SWARMDECK_POOL_* settings of this worker. The CPU backstop is the run's duration and stop
        timeout plus SWARMDECK_POOL_CPU_GRACE (300 s: the import, a slow start, a busy machine)."""
        grace = _env_int("SWARMDECK_POOL_CPU_GRACE", 300)
        cpu = int(duration + stop_timeout + grace) if duration > 0 else 0
        return cls(
            memory_mb=_env_int("SWARMDECK_POOL_MEMORY_MB", cls.memory_mb, minimum=64),
            processes=_env_int("SWARMDECK_POOL_PROCESSES", cls.processes, minimum=8),
            open_files=_env_int("SWARMDECK_POOL_OPEN_FILES", cls.open_files, minimum=32),
            cpu_seconds=cpu,
            tmp_mb=_env_int("SWARMDECK_POOL_TMP_MB", cls.tmp_mb, minimum=1),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Limits:
        return cls(**json.loads(text))


def _set(kind: int, soft: int, hard: int | None = None) -> None:
    """Lower a limit (never above the hard limit we already have: only root could raise it)."""
    current_soft, current_hard = resource.getrlimit(kind)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(kind, (soft, hard))


def apply(limits: Limits) -> None:
    """Applied by the pool to itself; children inherit them."""
    _set(resource.RLIMIT_AS, limits.memory_mb * MIB)
    _set(resource.RLIMIT_NOFILE, limits.open_files)
    _set(resource.RLIMIT_CORE, 0)
    if limits.absolute_processes:
        _set(resource.RLIMIT_NPROC, limits.processes)
    if limits.cpu_seconds > 0:
        _set(resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + CPU_HARD_EXTRA)


def drop_to(uid: int) -> None:
    """Become the sandbox's own unprivileged user for good: no groups, no capabilities, and no
    way back through a setuid program (no_new_privs)."""
    import ctypes

    pr_set_no_new_privs = 38
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_no_new_privs, 1, 0, 0, 0)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("The pool could not drop its privileges; refusing to run user code.")


def boot(text: str) -> None:
    """The pool's first call (workers.sandbox.BOOT): its limits, then its user."""
    spec = json.loads(text)
    apply(Limits.from_json(spec["limits"]))
    if spec.get("uid") is not None:
        drop_to(int(spec["uid"]))
