"""The audit trail's one entry point: `record()` a change; `via()` says from which interface it came.

Callers (views, API, schedules, services) call `record()` where a change is made, inside its
transaction when there is one: an entry is written in a savepoint, so it rolls back with a change
that rolls back, and a failure to write it never breaks the change itself. The interface (UI, API
with the token's name, schedule, command line) is taken from the context `via()` set; middleware
sets "ui" for web requests, the API's auth sets "api:<token name>". A context variable follows
the code into threads started by asgiref's sync_to_async and into asyncio tasks, so Channels'
async code sees the interface that was set for it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Iterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, transaction

log = logging.getLogger(__name__)

_interface: contextvars.ContextVar[str] = contextvars.ContextVar("swarmdeck_audit_interface", default="system")

# Keys of `details` that name a secret's value (or a credential) are dropped, at any depth.
SECRET_KEY_PATTERN = re.compile(r"(^|_)(value|values|secret|secrets|password|passwd|token|key|ciphertext|"
                                r"credentials?)$", re.IGNORECASE)
# Keys that look like the above but hold names only.
NAME_KEYS = frozenset({"secret_names", "secret_name", "token_name"})


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


def without_secrets(details: dict | None) -> dict:
    """`details` as plain JSON data without any key that could hold a secret's value (see SECRET_KEY_PATTERN)."""
    plain = json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder, default=str))
    return _strip(plain) if isinstance(plain, dict) else {"details": plain}


def _strip(value):
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            if key not in NAME_KEYS and SECRET_KEY_PATTERN.search(str(key)):
                log.warning("Audit details key %r was dropped: an audit entry never stores a secret.", key)
                continue
            kept[key] = _strip(item)
        return kept
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def record(action: str, *, actor=None, project=None, subject: str = "", details: dict | None = None) -> None:
    """Record one change. `action` is dotted ("run.started", "quota.changed", "secret.deleted"), `actor`
    the user who made it (None: the system), `project` the project it belongs to (None: site-wide),
    `subject` a short human description ("run #12", "scenario Checkout"), `details` JSON-able facts
    (never a secret's value: keys such as "value" or "secret" are dropped).

    Never raises: a change must not fail because its audit entry could not be written (that is logged)."""
    from audit.models import AuditEntry

    try:
        user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
        entry = AuditEntry(
            actor=user, actor_name=user.get_username() if user else "", interface=interface()[:120],
            project=project, project_name=project.name[:100] if project else "",
            project_slug=project.slug[:60] if project else "",
            action=action[:60], subject=str(subject)[:200], details=without_secrets(details),
        )
        with transaction.atomic():
            entry.save()
    except (DatabaseError, TypeError, ValueError):
        log.exception("The audit entry %s (%s) could not be written; the change itself went ahead.", action, subject)
