"""Architectural rules from DESIGN.md that break everything silently when violated."""

import ast
import os
import subprocess
import sys

from controlcenter.env import BASE_DIR

PROJECT_DIRS = ["controlcenter", "scenarios", "runs", "workers", "api", "automation"]


def _python_files():
    for directory in PROJECT_DIRS:
        yield from (BASE_DIR / directory).rglob("*.py")


def _imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_it_imports_locust_only_in_the_pool():
    offenders = [
        str(path.relative_to(BASE_DIR))
        for path in _python_files()
        if not path.name.startswith("pool")
        for module in _imported_modules(path)
        if module == "locust" or module.startswith("locust.")
    ]
    assert offenders == []


def test_it_keeps_workers_independent_of_runs_and_scenarios():
    offenders = [
        (str(path.relative_to(BASE_DIR)), module)
        for path in (BASE_DIR / "workers").rglob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] in ("runs", "scenarios", "django")
    ]
    assert offenders == []


# The collector's parts, each with the parts it may import: the collector composes them, never the reverse.
# leader is a leaf: persistence and lifecycle raise its LeadLost when the lead is gone mid-step.
COLLECTOR_PARTS = {"intake": set(), "leader": set(), "liverun": {"intake"}, "persistence": {"liverun", "leader"},
                   "lifecycle": {"liverun", "persistence", "leader"}}


def _runs_modules(path):
    """The runs.<name> modules a file imports, by name (`from runs import x` included)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from (name.split(".")[1] for name in names if name.startswith("runs."))


def test_it_keeps_the_collectors_parts_importing_one_way():
    parts = {"collector", *COLLECTOR_PARTS}
    offenders = [
        (name, module)
        for name, allowed in COLLECTOR_PARTS.items()
        for module in _runs_modules(BASE_DIR / "runs" / f"{name}.py")
        if module in parts and module not in allowed
    ]
    assert offenders == []


def _python(code, env):
    return subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | env)


def test_it_loads_the_web_app_without_locust_or_gevent():
    code = (
        "import sys, django\n"
        "import controlcenter.asgi, controlcenter.urls, controlcenter.celery\n"
        "from django.apps import apps\n"
        "import importlib\n"
        "for app in apps.get_app_configs():\n"
        "    for name in ('views', 'forms', 'services', 'admin', 'models', 'collector', 'intake', 'leader',\n"
        "                 'liverun', 'persistence', 'lifecycle', 'health', 'webhooks', 'schedules', 'tasks',\n"
        "                 'schema'):\n"
        "        try: importlib.import_module(f'{app.name}.{name}')\n"
        "        except ModuleNotFoundError as e:\n"
        "            if e.name != f'{app.name}.{name}': raise\n"
        "from django.core.management import get_commands, load_command_class\n"
        "for name, app in get_commands().items():\n"
        "    if app in ('runs', 'controlcenter', 'scenarios', 'automation', 'api'): load_command_class(app, name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))\n"
    )
    result = _python(code, {"DJANGO_SETTINGS_MODULE": "tests.settings"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_it_starts_the_celery_app_with_redis_and_nothing_else():
    env = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
    # kombu peeks at the bare `django` package for its JSON encoder; settings and ORM must stay unloaded.
    code = ("import sys, controlcenter.celery, controlcenter.celery as c; c.app.loader.import_default_modules()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')\n"
            "             or m.startswith(('django.conf', 'django.db', 'django.apps'))))")
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
                            env={**{k: clean[k] for k in ("PATH", "HOME") if k in clean}, **env})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
