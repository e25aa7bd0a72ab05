"""Settings come from the environment and fail loudly on values they cannot use."""

import json
import os
import secrets
import subprocess
import sys

import pytest

from controlcenter.env import BASE_DIR, BadSetting, envbool, envfloat, envint, parse_database_url, resolve_redis_url

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "swarmdeck.example.com",
    "HTTPS": "1",
    "DATABASE_URL": "postgres://swarmdeck:s3cret@db.example.com:5432/swarmdeck",
    "REDIS_URL": "redis://redis.example.com:6379/0",
}


def manage(*args, env: dict, drop=()):
    full = {k: v for k, v in os.environ.items() if k not in drop and k != "DJANGO_SETTINGS_MODULE"}
    full.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=full,
                          capture_output=True, text=True, timeout=120)


def test_it_passes_check_deploy_with_production_values():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_warns_check_deploy_when_served_over_plain_http():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION, "HTTPS": "0"})
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout


def test_it_refuses_to_start_production_without_a_secret_key(tmp_path):
    result = manage("check",
                    env={k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"} | {"VAR_DIR": str(tmp_path)},
                    drop=("SECRET_KEY",))
    assert result.returncode == 1
    assert "SECRET_KEY is not set" in result.stderr


def test_it_keeps_a_development_key_under_var(tmp_path):
    result = manage("check", env={"DEBUG": "1", "VAR_DIR": str(tmp_path)}, drop=("SECRET_KEY",))
    assert result.returncode == 0, result.stderr
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    manage("check", env={"DEBUG": "1", "VAR_DIR": str(tmp_path)}, drop=("SECRET_KEY",))
    assert (tmp_path / "secret_key").read_text() == key  # kept, not regenerated


@pytest.mark.parametrize("name,value,message", [
    ("DEBUG", "perhaps", "DEBUG='perhaps' is not a boolean"),
    ("DATABASE_URL", "mysql://x@y/z", "unsupported scheme 'mysql'"),
    ("DATABASE_URL", "postgres://x@y:5432/", "names no database"),
    ("REDIS_URL", "http://localhost:6379", "must start with redis://"),
    ("SECURE_HSTS_SECONDS", "a year", "is not an integer"),
    ("SWARMDECK_COMPARE_LEVEL", "95", "SWARMDECK_COMPARE_LEVEL='95' must be between 0.5 and 0.9999"),
    ("SWARMDECK_COMPARE_MIN_MS", "one", "SWARMDECK_COMPARE_MIN_MS='one' is not a number"),
    ("SWARMDECK_MAX_ENDPOINTS", "10000", "SWARMDECK_MAX_ENDPOINTS='10000' must be at most 4000"),
])
def test_it_fails_loudly_on_bad_values(name, value, message):
    result = manage("check", env={**PRODUCTION, name: value})
    assert result.returncode == 1
    assert message in result.stderr


def _embedded_pointer(var, pid: int) -> str:
    url = f"redis://:pw@127.0.0.1:{6400 + pid % 1000}/0"
    (var / "redis").mkdir(parents=True)
    (var / "redis" / "embedded.json").write_text(json.dumps({"url": url, "port": 6400 + pid % 1000, "pid": pid}))
    return url


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_it_uses_the_embedded_redis_only_while_its_server_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    live, dead = tmp_path / "live", tmp_path / "dead"
    url = _embedded_pointer(live, os.getpid())
    monkeypatch.setenv("VAR_DIR", str(live))
    assert resolve_redis_url() == url

    _embedded_pointer(dead, _dead_pid())
    monkeypatch.setenv("VAR_DIR", str(dead))
    with pytest.raises(BadSetting) as error:
        resolve_redis_url()
    assert str(error.value) == (f"REDIS_URL is not set and no embedded redis-server of `make run` is running "
                                f"(VAR_DIR={dead}): start `make run`, or set REDIS_URL.")

    monkeypatch.setenv("REDIS_URL", "redis://redis.example.com:6379/0")  # REDIS_URL wins over any pointer
    assert resolve_redis_url() == "redis://redis.example.com:6379/0"


def test_it_says_so_when_a_management_command_finds_only_a_dead_embedded_redis(tmp_path):
    var = tmp_path / "var"
    _embedded_pointer(var, _dead_pid())
    result = manage("check", env={"DEBUG": "1", "VAR_DIR": str(var)}, drop=("REDIS_URL",))
    assert result.returncode == 1
    assert "ImproperlyConfigured: REDIS_URL is not set and no embedded redis-server of `make run` is running" \
        in result.stderr


def test_it_keeps_the_local_default_where_make_run_never_started(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    assert resolve_redis_url() == "redis://127.0.0.1:6379/0"
    # The Celery app (load workers, beat) still imports there without REDIS_URL, as before.
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run([sys.executable, "-c", "import controlcenter.celery as c; print(c.app.conf.broker_url)"],
                            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "redis://127.0.0.1:6379/0"


def test_it_reads_database_urls():
    pg = parse_database_url("postgresql://user:p%40ss@127.0.0.1:5433/swarm?sslmode=require")
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql", "swarm", "user", "p@ss", "127.0.0.1", "5433")
    assert pg["OPTIONS"] == {"sslmode": "require"}
    assert parse_database_url("sqlite:////var/lib/sd.sqlite3")["NAME"] == "/var/lib/sd.sqlite3"
    assert parse_database_url("sqlite:///var/sd.sqlite3")["NAME"] == str(BASE_DIR / "var" / "sd.sqlite3")
    lite = parse_database_url("sqlite:////tmp/x.db")
    assert "journal_mode=WAL" in lite["OPTIONS"]["init_command"] and lite["OPTIONS"]["timeout"] >= 20


def test_it_reads_booleans_and_integers(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    monkeypatch.setenv("COUNT", "12")
    assert envbool("FLAG", False) is True
    assert envint("COUNT", 1) == 12
    monkeypatch.setenv("COUNT", "-1")
    with pytest.raises(BadSetting, match="at least 0"):
        envint("COUNT", 1, minimum=0)
    monkeypatch.setenv("COUNT", "4001")
    with pytest.raises(BadSetting, match="at most 4000"):
        envint("COUNT", 1, minimum=1, maximum=4000)
    monkeypatch.setenv("LEVEL", "0.95")
    assert envfloat("LEVEL", 0.99, minimum=0.5, maximum=0.9999) == 0.95
    assert envfloat("UNSET_LEVEL", 0.99) == 0.99
    monkeypatch.setenv("LEVEL", "nan")
    with pytest.raises(BadSetting, match="between 0.5 and 0.9999"):
        envfloat("LEVEL", 0.99, minimum=0.5, maximum=0.9999)


def test_it_logs_client_errors_without_their_traceback():
    import logging
    import sys

    from controlcenter.logfilters import ShortClientErrors

    try:
        raise PermissionError("not yours")
    except PermissionError:
        exc_info = sys.exc_info()
    records = {}
    for status in (403, 500):
        record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden", (), exc_info)
        record.status_code = status
        assert ShortClientErrors().filter(record)
        records[status] = record
    assert records[403].exc_info is None
    assert records[500].exc_info is exc_info  # server errors keep theirs
