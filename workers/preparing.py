"""A slot's *preparing* step: its bundle's requirements.txt installed, or found cached, before the pool starts.

The time it takes counts against SWARMDECK_PIP_TIMEOUT, not the import timeout: the slot
imports the locustfile only once its environment is ready. What pip prints goes to the run's
Logs tab; its latest line is also the slot's state on the run page, at most once a second.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from workers import requirements, venvs
from workers.bundle import REQUIREMENTS

SAY_EVERY = 1.0


class PrepareFailed(Exception):
    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


def enter(bundle_dir: Path, stack: contextlib.ExitStack, say: Callable[..., None],  # (line, done, seconds)
          event: Callable[[str, str], None]) -> venvs.Environment | None:
    """Enter the bundle's environment into `stack` (held until the stack closes); None without requirements."""
    path = bundle_dir / REQUIREMENTS
    if not path.is_file():
        return None
    try:
        wanted = requirements.parse(path.read_text(encoding="utf-8-sig"))
    except (requirements.RequirementsRefused, UnicodeDecodeError) as refused:
        raise PrepareFailed(str(refused)) from None
    if not wanted:
        return None
    started = time.monotonic()
    count = len(wanted.lines)
    say(f"Installing requirements.txt ({count} requirement{'s' if count != 1 else ''})…")
    event("INFO", f"Preparing the environment for requirements.txt: {', '.join(wanted.lines)}")
    said = [started]

    def on_line(line: str) -> None:
        event("INFO", f"pip: {line}")
        if time.monotonic() - said[0] >= SAY_EVERY:
            said[0] = time.monotonic()
            say(line)

    try:
        environment = stack.enter_context(venvs.use(wanted, on_line))
    except venvs.PipFailed as failed:
        event("ERROR", str(failed))
        raise PrepareFailed(str(failed)) from None
    took = time.monotonic() - started
    done = (f"Environment built in {took:.2f} s." if environment.built
            else f"Environment reused from this machine's cache ({took:.2f} s).")
    event("INFO", done)
    say(done, done=True, seconds=took)
    return environment
