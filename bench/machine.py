"""The benchmarks' view of the machine they share: priorities, CPU pinning and the hypervisor's steal.

On a shared two-core VM the load generator, nginx and the control plane compete for the same CPUs and
the host takes time from the VM. These helpers let a benchmark give the load generator a CPU of its own
(as it would have a machine of its own) and print how much CPU the host took meanwhile.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def stolen_seconds() -> float:
    """CPU time the hypervisor gave to other guests instead of this VM, all CPUs, since boot (/proc/stat `steal`)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def busy_seconds(cpu: int) -> float:
    """CPU time `cpu` spent on anything but idling and waiting for I/O since boot (/proc/stat `cpuN`): with a
    load generator pinned alone to that CPU, the CPU time it used."""
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == f"cpu{cpu}":
            ticks = [int(value) for value in fields[1:9]]   # user nice system idle iowait irq softirq steal
            return (sum(ticks) - ticks[3] - ticks[4] - ticks[7]) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError(f"no cpu{cpu} line in /proc/stat")


def raise_priority(niceness: int) -> int:
    """Run at `niceness` (inherited by every process started from here on); the niceness in effect."""
    current = os.nice(0)
    if niceness != current:
        try:
            os.nice(niceness - current)
        except PermissionError:
            pass
    return os.nice(0)


def load_worker_pids(launcher_pid: int) -> set[int]:
    """The load worker `make run` started and every process below it (its slots and their pools)."""
    import psutil

    launcher = psutil.Process(launcher_pid)
    loadgen = [p for p in launcher.children(recursive=True) if "loadgen" in " ".join(p.cmdline())]
    return {p.pid for worker in loadgen for p in [worker, *worker.children(recursive=True)]}


def lower_control_plane(launcher_pid: int, niceness: int) -> int:
    """Every process `make run` started but the load worker (and its pools) at `niceness`; how many."""
    import psutil

    launcher = psutil.Process(launcher_pid)
    spared = load_worker_pids(launcher_pid)
    lowered = 0
    for process in [launcher, *launcher.children(recursive=True)]:
        if process.pid not in spared:
            try:
                process.nice(max(process.nice(), niceness))
                lowered += 1
            except (psutil.Error, PermissionError):
                pass
    return lowered


def split_cpus() -> tuple[list[int], list[int]] | None:
    """(the load generator's CPU, the others), or None on a one-CPU machine."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1:], cpus[:-1]) if len(cpus) >= 2 else None


def _set_affinity(pids: set[int], cpus: list[int]) -> None:
    import psutil

    for pid in pids:
        try:
            psutil.Process(pid).cpu_affinity(cpus)
        except psutil.Error:
            pass


def _everything_else(launcher_pid: int, nginx_pid: int | None, spared: set[int]) -> set[int]:
    import psutil

    launcher = psutil.Process(launcher_pid)
    others = [launcher, *launcher.children(recursive=True), psutil.Process()]
    if nginx_pid:
        nginx = psutil.Process(nginx_pid)
        others += [nginx, *nginx.children(recursive=True)]
    return {p.pid for p in others} - spared


def pin_load_worker(launcher_pid: int, nginx_pid: int | None) -> str:
    """The load worker and its pools alone on the last CPU, everything else (nginx, the control plane, this
    script) on the others: as if the load generator had a machine of its own. What was pinned, in words."""
    split = split_cpus()
    if split is None:
        return "not pinned (one CPU)"
    mine, rest = split
    spared = load_worker_pids(launcher_pid)
    _set_affinity(_everything_else(launcher_pid, nginx_pid, spared), rest)
    _set_affinity(spared, mine)
    return f"load worker ({len(spared)} processes) on CPU {mine[0]}, the rest on CPU {','.join(map(str, rest))}"


@contextlib.contextmanager
def load_worker_pinned(launcher_pid: int, nginx_pid: int | None) -> Iterator[str]:
    """pin_load_worker for the block's duration; afterwards every process may use every CPU again."""
    every = sorted(os.sched_getaffinity(0))
    described = pin_load_worker(launcher_pid, nginx_pid)
    try:
        yield described
    finally:
        spared = load_worker_pids(launcher_pid)
        _set_affinity(_everything_else(launcher_pid, nginx_pid, spared) | spared, every)
