"""The audit trail's one entry point: `record()` a change; `via()` says from which interface it came.

Callers (views, API, schedules, services) call `record()` after a change commits. The interface
(UI, API with the token's name, schedule, command line) is taken from the context `via()` set;
middleware sets "ui" for web requests, the API's auth sets "api:<token name>".
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_interface: contextvars.ContextVar[str] = contextvars.ContextVar("swarmdeck_audit_interface", default="system")


@contextlib.contextmanager
def via(interface: str) -> Iterator[None]:
    """Changes recorded inside this block came from `interface` ("ui", "api:ci-token", "schedule:7", "cli")."""
    token = _interface.set(interface)
    try:
        yield
    finally:
        _interface.reset(token)


def interface() -> str:
    return _interface.get()


def record(action: str, *, actor=None, project=None, subject: str = "", details: dict | None = None) -> None:
    """Record one change. `action` is dotted ("run.started", "quota.changed", "secret.deleted"), `actor`
    the user who made it (None: the system), `project` the project it belongs to (None: site-wide),
    `subject` a short human description ("run #12", "scenario Checkout"), `details` JSON-able facts
    (never a secret's value)."""
    # Storage is built in the audit app (AuditEntry); until then a change is recorded nowhere.
