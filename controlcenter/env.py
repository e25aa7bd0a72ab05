"""Tiny, strict readers for settings that come from the environment.

Every helper fails loudly (ImproperlyConfigured-style ValueError naming the variable)
on a value it cannot understand, instead of silently falling back to a default.
This module imports nothing from Django so that the Celery app and the launcher
can use it without configuring Django.
"""

import ipaddress
import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"  # REDIS_URL unset and `make run` never started here


class BadSetting(ValueError):
    """An environment variable holds a value Swarmdeck cannot use."""


def envstr(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadSetting(f"{name}={value!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off.")


def envint(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadSetting(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise BadSetting(f"{name}={value!r} must be at least {minimum}.")
    if maximum is not None and number > maximum:
        raise BadSetting(f"{name}={value!r} must be at most {maximum}.")
    return number


def envfloat(name: str, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise BadSetting(f"{name}={value!r} is not a number.") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum) or number != number:
        bounds = f"between {minimum:g} and {maximum:g}" if minimum is not None and maximum is not None else (
            f"at least {minimum:g}" if minimum is not None else f"at most {maximum:g}")
        raise BadSetting(f"{name}={value!r} must be {bounds}.")
    return number


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def envnetworks(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of networks in CIDR notation (a bare address is one host), normalised."""
    networks = []
    for item in envlist(name, default):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise BadSetting(f"{name}: {item!r} is not a network (e.g. 10.0.0.0/8 or ::1/128).") from None
    return networks


def var_dir() -> Path:
    """Where single-machine state lives: SQLite, the embedded Redis, the dev secret key."""
    return Path(os.environ.get("VAR_DIR") or BASE_DIR / "var").resolve()


def parse_database_url(url: str) -> dict:
    """Turn DATABASE_URL into a Django DATABASES entry (postgres:// or sqlite:///path)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = dict(parse_qsl(parts.query))
    if scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise BadSetting(f"DATABASE_URL={url!r} names no database (postgres://user@host:5432/NAME).")
        try:
            port = parts.port
        except ValueError:
            raise BadSetting(f"DATABASE_URL={url!r} has an invalid port.") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    if scheme == "sqlite":
        # sqlite:////abs/path.db or sqlite:///relative.db (relative to the project).
        path = unquote(parts.path)
        if path in ("", "/"):
            raise BadSetting(f"DATABASE_URL={url!r} names no SQLite file (sqlite:////path/to/db.sqlite3).")
        path = path[1:]  # "//abs/file" -> "/abs/file"; "/rel.db" -> "rel.db"
        file = Path(path) if Path(path).is_absolute() else BASE_DIR / path
        return sqlite_database(file)
    raise BadSetting(f"DATABASE_URL={url!r}: unsupported scheme {scheme!r}; use postgres:// or sqlite:///.")


def sqlite_database(file: Path) -> dict:
    """SQLite tuned so web, collector and beat write side by side without 'database is locked'.

    WAL lets readers and one writer work at once; IMMEDIATE transactions take the write
    lock up front, so a transaction waits (busy timeout) instead of failing half-way.
    """
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(file),
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        },
    }


def resolve_redis_url() -> str:
    """REDIS_URL, else the embedded redis-server of this machine's `make run` while it runs.

    The pointer `make run` leaves in VAR_DIR/redis/embedded.json counts only while its pid is
    alive: a stopped server (or one replaced by an external REDIS_URL since) is an error, never
    a URL that leads nowhere. A var dir that never had one keeps the local default.
    """
    url = os.environ.get("REDIS_URL")
    if url:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise BadSetting(f"REDIS_URL={url!r} must start with redis://, rediss:// or unix://.")
        return url
    from controlcenter import embedded_redis

    var = var_dir()
    url = embedded_redis.known_url(var)
    if not url:
        return DEFAULT_REDIS_URL
    if embedded_redis.running_pid(var):
        return url
    raise BadSetting(f"REDIS_URL is not set and no embedded redis-server of `make run` is running (VAR_DIR={var}): "
                     "start `make run`, or set REDIS_URL.")
