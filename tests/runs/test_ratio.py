"""The Current ratio from the static analysis, checked against Locust's own get_ratio on the same
locustfile (imported in a child process: importing locust here would monkey-patch pytest)."""

import json
import os
import subprocess
import sys

import pytest

from controlcenter.env import BASE_DIR
from runs.ratio import distribution, ratio, ratio_model
from scenarios.analysis import analyze

LOCUSTFILE = '''
from locust import HttpUser, TaskSet, between, tag, task


class Browse(TaskSet):
    @task(3)
    def listing(self):
        pass

    @tag("slow")
    @task
    def item(self):
        pass

    @task
    def leave(self):
        self.interrupt()


class Shopper(HttpUser):
    weight = 3
    wait_time = between(1, 2)
    tasks = {Browse: 2}


class Buyer(HttpUser):
    wait_time = between(1, 2)

    @task
    def cart(self):
        pass

    @tag("slow")
    @task(2)
    def checkout(self):
        pass


class Admin(HttpUser):
    fixed_count = 1
    wait_time = between(1, 2)

    @task
    def report(self):
        pass
'''

LOCUST = """
import json, sys
from locust.env import Environment
from locust.user.inspectuser import _calc_distribution, get_ratio
from locust.util.load_locustfile import load_locustfile
path, users, params = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
available, _ = load_locustfile(path)
classes = [available[n] for n in params.get("user_classes") or []] or list(available.values())
env = Environment(user_classes=classes, tags=params.get("tags") or None,
                  exclude_tags=params.get("exclude_tags") or None)
env._filter_tasks_by_tags()   # what its runners do when they start
counts = _calc_distribution(env.user_classes, users)
print(json.dumps({"counts": counts, "per_class": get_ratio(env.user_classes, counts, False),
                  "total": get_ratio(env.user_classes, counts, True)}))
"""


def locusts_ratio(tmp_path, users, params):
    path = tmp_path / "locustfile.py"
    path.write_text(LOCUSTFILE)
    result = subprocess.run([sys.executable, "-c", LOCUST, str(path), str(users), json.dumps(params)], cwd=BASE_DIR,
                            capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def approx(tree):
    return {name: {**entry, "ratio": pytest.approx(entry["ratio"]),
                   **({"tasks": approx(entry["tasks"])} if "tasks" in entry else {})} for name, entry in tree.items()}


@pytest.mark.parametrize("users,params", [
    (10, {}),
    (7, {"exclude_tags": ["slow"]}),
    (25, {"user_classes": ["Shopper", "Buyer"]}),
    (4, {"tags": ["slow"], "user_classes": ["Shopper", "Buyer"]}),
])
def test_it_computes_the_ratio_locust_shows(tmp_path, users, params):
    model = ratio_model(analyze({"locustfile.py": LOCUSTFILE}), params)
    theirs = locusts_ratio(tmp_path, users, params)
    assert distribution(model["classes"], users) == theirs["counts"]
    assert ratio(model, users, total=False) == approx(theirs["per_class"])
    assert ratio(model, users, total=True) == approx(theirs["total"])
    assert model["approximate"] is False
