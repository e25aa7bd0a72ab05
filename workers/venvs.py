"""One virtualenv per requirements digest on each worker, cached with a size cap and LRU eviction.

Only wheels are installed (`--only-binary :all:`): building an sdist would run the package's
code on the worker, outside the sandbox. An environment layers on Swarmdeck's own packages: a
`.pth` file puts the worker's site-packages after the environment's own, and pip resolves under
constraints pinning every base package, so locust and gevent stay the pinned ones. Builds happen
once per digest per machine (a lock file), in a temporary directory renamed into place when pip
succeeded; a pool using an environment holds a shared lock on it, and eviction skips
environments in use.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workers import requirements

COMPLETE = ".complete"
IN_USE = ".in-use"
PIP_TAIL = 20


class PipFailed(RuntimeError):
    """pip could not install the requirements; the message is pip's own last lines."""


@dataclass(frozen=True)
class Settings:
    root: Path
    cap_bytes: int
    timeout: float

    @classmethod
    def from_env(cls) -> Settings:
        root = os.environ.get("SWARMDECK_VENV_DIR") or str(Path.home() / ".cache" / "swarmdeck" / "venvs")
        return cls(root=Path(root), cap_bytes=int(os.environ.get("SWARMDECK_VENV_CACHE_MB", "2048")) * 2**20,
                   timeout=float(os.environ.get("SWARMDECK_PIP_TIMEOUT", "300")))


@dataclass(frozen=True)
class Environment:
    path: Path
    built: bool  # False when it came from the cache

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def _site_packages(venv: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / version / "site-packages"


def _base_paths() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


@contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _pip(venv: Path, wanted: requirements.Requirements, timeout: float, on_line: Callable[[str], None]) -> None:
    (venv / "requirements.txt").write_text(wanted.text)
    (venv / "constraints.txt").write_text("\n".join(requirements.base_pins()) + "\n")
    argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
            "--progress-bar", "off", "--no-warn-script-location", "--only-binary", ":all:",
            "-c", str(venv / "constraints.txt"), "-r", str(venv / "requirements.txt")]
    tail: deque[str] = deque(maxlen=PIP_TAIL)
    deadline = time.monotonic() + timeout
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               text=True, env={**os.environ, "PYTHONNOUSERSITE": "1"}, start_new_session=True)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail.append(line)
                on_line(line)
            if time.monotonic() > deadline:
                raise PipFailed(f"pip took longer than {timeout:.0f} s (SWARMDECK_PIP_TIMEOUT); its last lines:\n"
                                + "\n".join(tail))
        code = process.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise PipFailed(f"pip took longer than {timeout:.0f} s (SWARMDECK_PIP_TIMEOUT)") from None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    if code != 0:
        raise PipFailed("pip could not install requirements.txt:\n" + _explain(list(tail), venv))


def _explain(tail: list[str], venv: Path) -> str:
    """pip's own error, from its first ERROR line on, without its advice and our scratch paths."""
    first = next((i for i, line in enumerate(tail) if line.startswith("ERROR")), max(0, len(tail) - 5))
    kept = [line for line in tail[first:] if not re.match(r"(to fix this|\d\. )", line.strip().lower())]
    if any("No matching distribution" in line for line in kept):
        kept.append("Check the name and version on the index. If they exist there, note that Swarmdeck installs "
                    "wheels only (building a package from source would run its code on the worker): pick a "
                    "version with a wheel for this Python.")
    if any("(constraint)" in line for line in kept):
        kept.append("Swarmdeck keeps its own packages (locust, gevent and theirs) at their installed versions: "
                    "a requirement that needs another version of one cannot be installed.")
    return "\n".join(kept).replace(f"-r {venv / 'requirements.txt'}", "requirements.txt")


def _build(target: Path, wanted: requirements.Requirements, timeout: float, on_line: Callable[[str], None]) -> None:
    scratch = target.with_name(f"{target.name}.building-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(scratch)], check=True,
                       capture_output=True, timeout=60)
        site = _site_packages(scratch)
        # After the environment's own site-packages: its packages first, then Swarmdeck's (pip among them).
        (site / "_swarmdeck_base.pth").write_text("".join(f"{path}\n" for path in _base_paths()))
        _pip(scratch, wanted, timeout, on_line)
        (scratch / COMPLETE).write_text(wanted.text)
        scratch.chmod(0o755)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _lock_file(settings: Settings, digest: str) -> Path:
    return settings.root / f".{digest}.lock"


@contextmanager
def use(wanted: requirements.Requirements, on_line: Callable[[str], None] = lambda line: None,
        settings: Settings | None = None) -> Iterator[Environment]:
    """The environment for these requirements, built if needed, held in use until the block ends."""
    settings = settings or Settings.from_env()
    target = settings.root / wanted.digest
    built = False
    with _locked(_lock_file(settings, wanted.digest), fcntl.LOCK_EX):
        if not (target / COMPLETE).exists():
            shutil.rmtree(target, ignore_errors=True)
            _build(target, wanted, settings.timeout, on_line)
            built = True
        (target / COMPLETE).touch()  # its mtime is the LRU clock
        holder = (target / IN_USE).open("a")
        fcntl.flock(holder, fcntl.LOCK_SH)  # before the build lock goes: eviction cannot slip in between
    try:
        if built:
            evict(settings)
        yield Environment(path=target, built=built)
    finally:
        holder.close()


def evict(settings: Settings) -> list[Path]:
    """Delete least recently used environments not in use until the cache fits its cap."""
    if not settings.root.exists():
        return []
    complete = [p for p in settings.root.iterdir() if (p / COMPLETE).exists()]
    sizes = {p: _size(p) for p in complete}
    total = sum(sizes.values())
    removed: list[Path] = []
    for path in sorted(complete, key=lambda p: (p / COMPLETE).stat().st_mtime):
        if total <= settings.cap_bytes:
            break
        if _evict_one(settings, path):
            total -= sizes[path]
            removed.append(path)
    return removed


def _evict_one(settings: Settings, path: Path) -> bool:
    with _lock_file(settings, path.name).open("a") as build_lock:
        try:
            fcntl.flock(build_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # being built or being taken into use right now
        with (path / IN_USE).open("a") as holder:
            try:
                fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a pool runs in it
            (path / COMPLETE).unlink()
        shutil.rmtree(path, ignore_errors=True)
    return True
