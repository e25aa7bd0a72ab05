"""What keeps pytest-xdist workers apart (`make test` runs the suite in two of them).

Each worker gets its own Redis database and VAR_DIR (tests/settings.py); pytest-django gives each its
own test database. Tests that start real processes (the `slow` marker: collectors, load workers,
launchers, browsers) all run in one worker, one after another, as they did before the suite was
parallel: their timings assume the machine is not also running another end-to-end test. The rest of
the suite is spread file by file over the workers, so a module's fixtures are set up once.

A test that breaks what every worker shares (it restarts PostgreSQL) does it inside `exclusive()`:
no other worker's test runs meanwhile (each test holds a shared turn, conftest's `shared_turn`), and
the others reconnect to the database before their next test.
"""

import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PROCESSES_GROUP = "processes"


def worker_number(worker: str) -> int:
    """0 for "gw0", 1 for "gw1", ..."""
    match = re.fullmatch(r"gw(\d+)", worker)
    if not match:
        raise ValueError(f"not a pytest-xdist worker id: {worker!r}")
    return int(match.group(1))


def worker_redis_url(url: str, worker: str) -> str:
    """The URL's database number plus the worker's number: redis://h:6379/1 is /1 for gw0, /2 for gw1."""
    head, _, tail = url.partition("?")
    match = re.fullmatch(r"(rediss?://[^/]*)(?:/(\d*))?", head)
    if not match:
        raise ValueError("REDIS_URL is not a redis:// URL")
    database = int(match.group(2) or 0) + worker_number(worker)
    if database > 15:
        raise ValueError(f"REDIS_URL's database {database} for {worker} is beyond Redis's default 16 databases")
    return f"{match.group(1)}/{database}" + (f"?{tail}" if tail else "")


def worker_var_dir(var_dir: str, worker: str) -> str:
    path = Path(var_dir) / worker
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def group_items(items: list[pytest.Item]) -> None:
    """xdist_group marks for `--dist loadgroup`: the process tests together, every other file on its own."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        name = PROCESSES_GROUP if item.get_closest_marker("slow") else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(name))


def _lock_base() -> Path | None:
    """Where this test run's workers meet (one run: pytest-xdist's TESTRUNUID); None without xdist."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    return Path(tempfile.gettempdir()) / f"swarmdeck-tests-{run}" if run else None


def _generation(base: Path) -> str:
    try:
        return (base.parent / f"{base.name}.generation").read_text()
    except FileNotFoundError:
        return ""


_seen_generation = ""
_turn = None  # the lock file through which this worker's current test holds its shared turn


@contextmanager
def shared_turn() -> Iterator[bool]:
    """Held for the length of each test; yields True when an exclusive section ran since this worker's last test
    (its database connections died with the server: close them)."""
    global _seen_generation, _turn
    base = _lock_base()
    if base is None:
        yield False
        return
    with open(f"{base}.gate", "a+") as gate, open(f"{base}.lock", "a+") as lock:
        fcntl.flock(gate, fcntl.LOCK_SH)  # waits while an exclusive section is pending or running
        fcntl.flock(lock, fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_UN)
        _turn = lock
        try:
            generation = _generation(base)
            changed, _seen_generation = generation != _seen_generation, generation
            yield changed
        finally:
            _turn = None
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def exclusive() -> Iterator[None]:
    """Run the block while no other worker runs a test: they finish the one they are in, then wait."""
    global _seen_generation
    base = _lock_base()
    if base is None or _turn is None:
        yield
        return
    with open(f"{base}.gate", "a+") as gate:
        fcntl.flock(gate, fcntl.LOCK_EX)  # no other test starts
        try:
            fcntl.flock(_turn, fcntl.LOCK_EX)  # this test's shared turn becomes exclusive once the others ended
            try:
                yield
            finally:
                generation = base.parent / f"{base.name}.generation"
                _seen_generation = str(int(_generation(base) or 0) + 1)
                generation.write_text(_seen_generation)
                fcntl.flock(_turn, fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
