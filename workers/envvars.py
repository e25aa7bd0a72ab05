"""A run's environment variables and secrets, as user code gets them: names checked, values masked.

Scenarios set variables (name=value, visible to members) and choose project secrets; both reach
the pool's os.environ (workers.pool sets them before importing the locustfile). Wherever a
secret's value could show up again — a print, a log record, an exception's message or
traceback, a slot error — it is replaced by `[secret NAME]`: by the slot before anything is sent,
and again by the collector before anything is stored (runs.collector, runlogs.store).

Pure: stdlib only (the pool, the slot and Django all import it).
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from typing import Any

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NAME = 100
MAX_VALUE = 4096            # characters of one variable's or secret's value
MAX_VARIABLES = 100         # per scenario (and per run, overrides included)
MAX_TOTAL = 32 * 1024       # characters of every name and value of a scenario's variables together
MIN_SECRET = 4              # a shorter value would mask every such run of characters in every log line

# Names user code may not set: they change how the pool's Python, its loader or Swarmdeck itself
# behave, or are the control plane's own.
RESERVED = {"PATH", "HOME", "TMPDIR", "PWD", "SHELL", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "IFS",
            "MALLOC_ARENA_MAX", "OPENBLAS_NUM_THREADS", "REDIS_URL", "DATABASE_URL", "SECRET_KEY",
            "DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL", "GEVENT_SUPPORT"}
RESERVED_PREFIXES = ("PYTHON", "LD_", "SWARMDECK_", "DJANGO_", "CELERY_", "LOCUST_", "GEVENT_", "LC_")


def name_problem(name: Any) -> str | None:
    """Why `name` cannot be a variable or secret name (POSIX: letters, digits, _; not reserved), or None."""
    if not isinstance(name, str) or not name:
        return "A name is required."
    if len(name) > MAX_NAME:
        return f"{name[:40]}… is longer than {MAX_NAME} characters."
    if not NAME_RE.match(name):
        return (f"{name!r} is not an environment variable name: use letters, digits and _, not starting "
                "with a digit (e.g. API_HOST).")
    upper = name.upper()
    if upper in RESERVED or upper.startswith(RESERVED_PREFIXES):
        return (f"{name} is reserved: Swarmdeck, Python or the system set it (PATH, HOME, PYTHON*, LD_*, "
                "SWARMDECK_*, REDIS_URL and a few others cannot be set).")
    return None


def value_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"The value of {name} must be a string."
    if len(value) > MAX_VALUE:
        return f"The value of {name} is {len(value):,} characters long; at most {MAX_VALUE:,}."
    if "\x00" in value:
        return f"The value of {name} contains a NUL character."
    return None


def check_variables(variables: Any) -> dict[str, str]:
    """Variables checked: {name: value}; ValueError naming every problem."""
    if not isinstance(variables, dict):
        raise ValueError('Environment variables are a map of name to value, e.g. {"API_HOST": "https://x"}.')
    problems = [problem for name, value in variables.items()
                if (problem := name_problem(name) or value_problem(name, value))]
    if len(variables) > MAX_VARIABLES:
        problems.append(f"{len(variables)} variables; at most {MAX_VARIABLES}.")
    total = sum(len(str(name)) + len(str(value)) for name, value in variables.items())
    if total > MAX_TOTAL:
        problems.append(f"The variables take {total:,} characters together; at most {MAX_TOTAL:,}.")
    if problems:
        raise ValueError(" ".join(problems))
    return {str(name): str(value) for name, value in variables.items()}


def parse_lines(text: str) -> dict[str, str]:
    """NAME=VALUE lines (the scenario form, `runscenario --env`) as a map; blank lines and # comments skipped."""
    variables: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"Line {number} is not NAME=VALUE: {stripped[:60]!r}.")
        name = name.strip()
        if name in variables:
            raise ValueError(f"Line {number} sets {name} a second time.")
        variables[name] = value
    return check_variables(variables)


def as_lines(variables: dict[str, str] | None) -> str:
    return "\n".join(f"{name}={value}" for name, value in (variables or {}).items())


def pool_environment(variables: dict | None, secrets: dict | None) -> dict[str, str]:
    """What the pool adds to os.environ: variables, then secrets; a reserved name never (the pool checks again)."""
    merged = {**(variables or {}), **(secrets or {})}
    return {str(name): str(value) for name, value in merged.items() if name_problem(name) is None}


def secret_options(params: dict | None) -> dict[str, str]:
    """The values of a run's secret locustfile options (`is_secret=True`), named `--name`, for a Masker."""
    params = params or {}
    options = params.get("options") or {}
    return {f"--{name.replace('_', '-')}": str(options[name]) for name in params.get("secret_options") or []
            if options.get(name) not in (None, "")}


def mask_label(name: str) -> str:
    return f"[secret {name}]"


class Masker:
    """Replaces each secret's value (and its repr-, JSON- and HTML-escaped forms) by `[secret NAME]`."""

    def __init__(self, secrets: dict[str, str] | None = None):
        pairs: list[tuple[str, str]] = []
        for name, value in (secrets or {}).items():
            if not isinstance(value, str) or len(value) < MIN_SECRET:
                continue
            forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
                     html.escape(value), html.escape(value, quote=False)}
            pairs.extend((form, mask_label(name)) for form in forms if len(form) >= MIN_SECRET)
        pairs.sort(key=lambda pair: -len(pair[0]))  # the longest first: one value may contain another
        self.pairs = pairs

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def text(self, value: str) -> str:
        if not self.pairs or not isinstance(value, str):
            return value
        for secret, label in self.pairs:
            if secret in value:
                value = value.replace(secret, label)
        return value

    def data(self, value: Any) -> Any:
        """Strings anywhere in a JSON-like structure (keys included), masked; the rest as it is."""
        if not self.pairs:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(key): self.data(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.data(item) for item in value)
        return value

    def record(self, record: dict) -> dict:
        """A log record (workers.logs) with its message and logger masked."""
        if not self.pairs:
            return record
        return {**record, "message": self.text(record.get("message", "")),
                "logger": self.text(record.get("logger", ""))}

    def snapshot(self, snapshot: dict) -> dict:
        """A snapshot's endpoint names (a URL may hold a secret), error and exception texts masked in place:
        as the pool makes it (endpoint dicts) or as wire.decode returns it (with its "columns" too)."""
        if not self.pairs:
            return snapshot
        for row in snapshot.get("endpoints") or []:
            row["name"] = self.text(row["name"])
        columns = snapshot.get("columns")
        if columns is not None and any(self.text(name) != name for _, name in columns.names):
            # Two names that differ only by a secret become one row: RunStats.apply adds repeated rows up.
            snapshot["columns"] = dataclasses.replace(
                columns, names=tuple((method, self.text(name)) for method, name in columns.names))
        for row in snapshot.get("errors") or []:
            row["name"] = self.text(row["name"])
            row["error"] = self.text(row["error"])
        for row in snapshot.get("exceptions") or []:
            row["message"] = self.text(row["message"])
            row["traceback"] = self.text(row["traceback"])
        return snapshot
