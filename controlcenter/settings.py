"""Swarmdeck settings, read from the environment.

Defaults run a single machine without any configuration: SQLite and the embedded Redis
under VAR_DIR. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS and HTTPS.
"""

import secrets

from django.core.exceptions import ImproperlyConfigured

from controlcenter.env import (
    BASE_DIR,
    BadSetting,
    envbool,
    envfloat,
    envint,
    envlist,
    envnetworks,
    envstr,
    parse_database_url,
    resolve_redis_url,
    sqlite_database,
    var_dir,
)

try:
    VAR_DIR = var_dir()
    DEBUG = envbool("DEBUG", False)
    HTTPS = envbool("HTTPS", False)
    ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
    CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
    _database_url = envstr("DATABASE_URL")
    DATABASES = {
        "default": (parse_database_url(_database_url) if _database_url
                    else sqlite_database(VAR_DIR / "swarmdeck.sqlite3"))
    }
    REDIS_URL = resolve_redis_url()
    TIME_ZONE = envstr("TIME_ZONE", "UTC")
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
    # Runs go only to load workers that sandbox locustfiles (bubblewrap); DEBUG=1 allows any.
    SWARMDECK_REQUIRE_ISOLATION = envbool("SWARMDECK_REQUIRE_ISOLATION", not DEBUG)
    # Runs may target only hosts on their project's allow list (targets/); 0 for a single-team install.
    SWARMDECK_TARGET_ALLOW_LIST = envbool("SWARMDECK_TARGET_ALLOW_LIST", True)
    # Loopback targets (127.0.0.0/8, ::1, localhost) without an entry: development (DEBUG=1, `make run`).
    SWARMDECK_ALLOW_LOOPBACK_TARGETS = envbool("SWARMDECK_ALLOW_LOOPBACK_TARGETS", DEBUG)
except BadSetting as error:
    raise ImproperlyConfigured(str(error)) from None


def _secret_key() -> str:
    """SECRET_KEY, else one kept in VAR_DIR/secret_key (the launcher creates it); never a default."""
    key = envstr("SECRET_KEY")
    if key:
        return key
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    if DEBUG:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
        return key_file.read_text().strip()
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set it in the environment (production), "
        f"or start Swarmdeck with `make run`, which keeps one in {key_file}."
    )


SECRET_KEY = _secret_key()

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_celery_beat",
    "controlcenter",
    "scenarios",
    "runs",
    "automation",
    "runlogs",
    "sharing",
    "targets",
    "audit",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.InterfaceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "controlcenter.urls"
ASGI_APPLICATION = "controlcenter.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "scenarios.context_processors.navigation",
                "runs.health.context",
            ],
            "builtins": ["scenarios.templatetags.swarmdeck", "django.contrib.humanize.templatetags.humanize"],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "scenarios-project-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = envstr("STATIC_ROOT") or None
# Serve straight from the app and static dirs: no collectstatic step is needed anywhere.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Uploads: a .zip bundle is at most 10 MB; anything larger is refused before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# Security. Behind HTTPS (HTTPS=1) cookies are secure and HTTP redirects to HTTPS.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and envbool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and envbool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if envbool("BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Channels: the Redis channel layer carries live stats to browsers.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # The layer's blocking reads wait 5 s; redis-py 8's default socket timeout is also 5 s,
        # which made every quiet WebSocket fail. Reads get room; connecting stays quick.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5,
                              "health_check_interval": 15}], "capacity": 1000, "expiry": 30},
    }
}

# django-celery-beat: recurring runs live in the database.
CELERY_BEAT_SCHEDULER = "automation.beat:Scheduler"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"short_4xx": {"()": "controlcenter.logfilters.ShortClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["short_4xx"]}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Where people and webhook receivers reach this Swarmdeck: links in the CLI's output and in payloads.
SWARMDECK_BASE_URL = envstr("SWARMDECK_BASE_URL", f"http://127.0.0.1:{envint('PORT', 8000, minimum=1)}").rstrip("/")
# Webhooks may reach loopback, private and link-local addresses only if an admin allows it (SSRF guard).
SWARMDECK_WEBHOOK_ALLOW_PRIVATE = envbool("SWARMDECK_WEBHOOK_ALLOW_PRIVATE", False)
# Unread report-stream entries past which every page raises an alarm (nothing is trimmed unread).
SWARMDECK_STREAM_ALARM_ENTRIES = envint("SWARMDECK_STREAM_ALARM_ENTRIES", 100_000, minimum=1)
# Collector shards (runs/shards.py): each run is owned by one, by its id; one collector leads each shard (start
# at least this many `manage.py collect`, one more as a hot standby). Change it only while no run is active.
try:
    SWARMDECK_COLLECTOR_SHARDS = envint("SWARMDECK_COLLECTOR_SHARDS", 1, minimum=1, maximum=64)
except BadSetting as error:
    raise ImproperlyConfigured(str(error)) from None
# Seconds a run's claim and control keys stay in Redis once it ended: long enough for a late slot task
# to read its stop; then they expire (until the end, they are bounded by workers.protocol.RUN_KEY_TTL_SECONDS).
SWARMDECK_RUN_KEYS_AFTER_END = envint("SWARMDECK_RUN_KEYS_AFTER_END", 300, minimum=1)
# Days a finished run keeps its per-second RunTick rows; older ones are compacted to per-minute rows by
# `manage.py compact_ticks` (runs/retention.py; run it daily). 0: keep every second forever.
SWARMDECK_TICK_RETENTION_DAYS = envint("SWARMDECK_TICK_RETENTION_DAYS", 0, minimum=0)
# Distinct endpoint names a run keeps apart (workers.stats); later ones count as "(other)" of their method.
# The pools get it with their assignment and fold the same way, so a snapshot has at most this many names
# plus its "(other)" rows: under the 5,000 a snapshot may carry (workers.wire.MAX_ENDPOINTS).
try:
    SWARMDECK_MAX_ENDPOINTS = envint("SWARMDECK_MAX_ENDPOINTS", 500, minimum=1, maximum=4_000)
except BadSetting as error:
    raise ImproperlyConfigured(str(error)) from None
# Comparisons and the baseline rule (runs/significance.py): a change is better or worse only when the
# interval of the difference at this level excludes zero and the change is at least 1 ms and 2 % (response
# times), 0.5 percentage points (failure ratio), 2 % (RPS).
try:
    SWARMDECK_COMPARE_LEVEL = envfloat("SWARMDECK_COMPARE_LEVEL", 0.99, minimum=0.5, maximum=0.9999)
    SWARMDECK_COMPARE_MIN_MS = envfloat("SWARMDECK_COMPARE_MIN_MS", 1.0, minimum=0)
    SWARMDECK_COMPARE_MIN_PERCENT = envfloat("SWARMDECK_COMPARE_MIN_PERCENT", 2.0, minimum=0)
    SWARMDECK_COMPARE_MIN_FAILURE_PP = envfloat("SWARMDECK_COMPARE_MIN_FAILURE_PP", 0.5, minimum=0)
except BadSetting as error:
    raise ImproperlyConfigured(str(error)) from None


def _quota_default(name: str, cast: type) -> int | float | None:
    """A site-wide quota default (SWARMDECK_QUOTA_<NAME>): empty or unset is no limit."""
    value = (envstr(f"SWARMDECK_QUOTA_{name.upper()}") or "").strip()
    if not value:
        return None
    try:
        number = cast(value)
    except ValueError:
        raise ImproperlyConfigured(f"SWARMDECK_QUOTA_{name.upper()}={value!r} is not a number.") from None
    if number <= 0:
        raise ImproperlyConfigured(f"SWARMDECK_QUOTA_{name.upper()}={value!r} must be positive (empty: no limit).")
    return number


# Quotas for projects whose admin set none (sharing.quotas); a project's own value wins.
SWARMDECK_QUOTA_DEFAULTS = {
    "max_slots_per_run": _quota_default("max_slots_per_run", int),
    "max_concurrent_slots": _quota_default("max_concurrent_slots", int),
    "max_duration": _quota_default("max_duration", int),
    "max_users_per_slot": _quota_default("max_users_per_slot", int),
    "monthly_slot_hours": _quota_default("monthly_slot_hours", float),
}
# The fair queue (sharing.queue): recent use counts over this many seconds; a run that does not fit
# lets smaller runs pass it for SWARMDECK_BACKFILL_AFTER seconds, then holds a reservation.
SWARMDECK_FAIR_WINDOW = envint("SWARMDECK_FAIR_WINDOW", 3600, minimum=1)
SWARMDECK_BACKFILL_AFTER = envint("SWARMDECK_BACKFILL_AFTER", 300, minimum=0)


# /metrics (metrics/): Prometheus scrapes with this bearer token, or without one from these networks
# (CIDRs). Default: loopback only; none behind a reverse proxy (BEHIND_PROXY=1), where every client
# would seem to come from the proxy's address. An empty SWARMDECK_METRICS_ALLOW: the token only.
try:
    SWARMDECK_METRICS_TOKEN = envstr("SWARMDECK_METRICS_TOKEN", "") or ""
    SWARMDECK_METRICS_ALLOW = envnetworks(
        "SWARMDECK_METRICS_ALLOW", [] if envbool("BEHIND_PROXY", False) else ["127.0.0.0/8", "::1/128"])
    # A run that ended stays exported this long (its final figures reach the next scrape), then vanishes.
    SWARMDECK_METRICS_ENDED_GRACE = envint("SWARMDECK_METRICS_ENDED_GRACE", 60, minimum=0)
except BadSetting as error:
    raise ImproperlyConfigured(str(error)) from None
