"""scenarios.analysis reads locustfiles the way Locust would load them, without ever running them."""

import json
import textwrap

import pytest

from scenarios.analysis import LocustfileError, analyze


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def only_user(findings: dict, name: str) -> dict:
    [user] = [user for user in findings["user_classes"] if user["name"] == name]
    return user


def method(name: str, line: int, weight: int | None = 1, tags: list | None = None) -> dict:
    return {"name": name, "kind": "method", "weight": weight, "tags": tags or [], "line": line, "tasks": [],
            "transitions": None}


def failure(sources: dict) -> LocustfileError:
    with pytest.raises(LocustfileError) as caught:
        analyze(sources)
    return caught.value


QUICKSTART = code(
    """
    import time
    from locust import HttpUser, task, between

    class QuickstartUser(HttpUser):
        wait_time = between(1, 5)
        host = "https://shop.example.com"

        @task
        def hello_world(self):
            self.client.get("/hello")
            self.client.get("/world")

        @task(3)
        def view_items(self):
            for item_id in range(10):
                self.client.get(f"/item?id={item_id}", name="/item")
                time.sleep(1)

        def on_start(self):
            self.client.post("/login", json={"username": "foo", "password": "bar"})
    """
)


def test_it_describes_the_quickstart_locustfile():
    findings = analyze({"locustfile.py": QUICKSTART})

    assert findings == {
        "entry": "locustfile.py",
        "user_classes": [
            {
                "name": "QuickstartUser",
                "module": "locustfile.py",
                "line": 4,
                "bases": ["HttpUser"],
                "root": "HttpUser",
                "abstract": False,
                "weight": None,
                "fixed_count": None,
                "host": "https://shop.example.com",
                "wait_time": "between(1, 5)",
                "tags": [],
                "has_on_start": True,
                "has_on_stop": False,
                "tasks": [method("hello_world", 9), method("view_items", 14, weight=3)],
            }
        ],
        "task_sets": [],
        "shape": None,
        "all_tags": [],
        "warnings": [],
        "modules": ["locustfile.py"],
        "options": [],
    }
    assert json.loads(json.dumps(findings)) == findings


def test_it_reads_weights_fixed_count_and_the_weight_keyword():
    source = code(
        """
        from locust import FastHttpUser, constant_throughput, task

        class Api(FastHttpUser):
            weight = 3
            fixed_count = 2
            wait_time = constant_throughput(0.5)

            @task(weight=7)
            def search(self):
                self.client.get("/search?q=shoes")

            @task()
            def browse(self):
                self.client.get("/")
        """
    )

    user = analyze({"locustfile.py": source})["user_classes"][0]

    assert (user["root"], user["weight"], user["fixed_count"], user["wait_time"]) == (
        "FastHttpUser", 3, 2, "constant_throughput(0.5)"
    )
    assert user["tasks"] == [method("search", 9, weight=7), method("browse", 13)]


def test_it_keeps_going_when_a_weight_or_host_is_not_a_literal():
    source = code(
        """
        import os
        from locust import HttpUser, task, between

        WEIGHT = int(os.environ.get("WEIGHT", "1"))

        class Web(HttpUser):
            host = os.environ["TARGET"]
            weight = WEIGHT
            wait_time = between(0.5, 2)

            @task(WEIGHT)
            def index(self):
                self.client.get("/")
        """
    )

    user = analyze({"locustfile.py": source})["user_classes"][0]

    assert (user["host"], user["weight"], user["tasks"]) == (None, None, [method("index", 12, weight=None)])


def test_it_collects_task_and_class_tags():
    source = code(
        """
        from locust import HttpUser, between, tag, task

        @tag("storefront")
        class Shopper(HttpUser):
            wait_time = between(1, 3)

            @tag("browse", "smoke")
            @task(2)
            def catalogue(self):
                self.client.get("/catalogue")

            @task
            @tag("checkout")
            def pay(self):
                self.client.post("/pay")
        """
    )

    findings = analyze({"locustfile.py": source})
    user = findings["user_classes"][0]

    assert user["tags"] == ["storefront"]
    assert user["tasks"] == [
        method("catalogue", 9, weight=2, tags=["browse", "smoke"]),
        method("pay", 14, tags=["checkout"]),
    ]
    assert findings["all_tags"] == ["browse", "checkout", "smoke", "storefront"]


def test_it_resolves_import_locust_and_attribute_access():
    source = code(
        """
        import locust
        import locust.contrib.fasthttp

        class Web(locust.HttpUser):
            wait_time = locust.between(1, 2)

            @locust.task(4)
            @locust.tag("home")
            def home(self):
                self.client.get("/")

        class Fast(locust.contrib.fasthttp.FastHttpUser):
            wait_time = locust.constant(1)

            @locust.task
            def ping(self):
                self.client.get("/ping")
        """
    )

    findings = analyze({"locustfile.py": source})

    assert [(u["name"], u["root"], u["bases"]) for u in findings["user_classes"]] == [
        ("Web", "HttpUser", ["locust.HttpUser"]),
        ("Fast", "FastHttpUser", ["locust.contrib.fasthttp.FastHttpUser"]),
    ]
    assert only_user(findings, "Web")["tasks"] == [method("home", 9, weight=4, tags=["home"])]
    assert only_user(findings, "Fast")["tasks"] == [method("ping", 16)]


def test_it_resolves_aliased_and_deep_imports():
    source = code(
        """
        from locust import HttpUser as H, task as t, constant
        from locust.contrib.fasthttp import FastHttpUser as Fast
        from locust.user.users import User

        class A(H):
            wait_time = constant(1)
            @t
            def a(self): ...

        class B(Fast):
            wait_time = constant(1)
            @t(2)
            def b(self): ...

        class C(User):
            wait_time = constant(1)
            @t
            def c(self): ...
        """
    )

    findings = analyze({"locustfile.py": source})

    assert [(u["name"], u["root"], u["bases"]) for u in findings["user_classes"]] == [
        ("A", "HttpUser", ["H"]),
        ("B", "FastHttpUser", ["Fast"]),
        ("C", "User", ["User"]),
    ]


def test_it_describes_nested_task_sets():
    source = code(
        """
        from locust import HttpUser, TaskSet, task, between

        class ForumThread(TaskSet):
            @task
            def read(self):
                self.client.get("/thread/1")

            @task(2)
            def stop(self):
                self.interrupt()

        class ForumPage(TaskSet):
            tasks = {ForumThread: 5}

            @task(20)
            def read_thread(self):
                self.client.get("/forum")

            @task(1)
            class Moderation(TaskSet):
                @task
                def ban(self):
                    self.client.post("/ban")

        class Visitor(HttpUser):
            wait_time = between(2, 4)
            tasks = [ForumPage]
        """
    )

    findings = analyze({"locustfile.py": source})

    thread_tasks = [method("read", 5), method("stop", 9, weight=2)]
    moderation_tasks = [method("ban", 22)]
    page_tasks = [
        {"name": "ForumThread", "kind": "taskset", "weight": 5, "tags": [], "line": 3, "tasks": thread_tasks,
         "transitions": None},
        method("read_thread", 16, weight=20),
        {"name": "Moderation", "kind": "taskset", "weight": 1, "tags": [], "line": 20, "tasks": moderation_tasks,
         "transitions": None},
    ]
    assert only_user(findings, "Visitor")["tasks"] == [
        {"name": "ForumPage", "kind": "taskset", "weight": 1, "tags": [], "line": 12, "tasks": page_tasks,
         "transitions": None}
    ]
    assert [(s["name"], s["line"], s["kind"]) for s in findings["task_sets"]] == [
        ("ForumThread", 3, "TaskSet"),
        ("ForumPage", 12, "TaskSet"),
        ("Moderation", 20, "TaskSet"),
    ]
    assert findings["task_sets"][1]["tasks"] == page_tasks


def test_it_sums_duplicated_entries_of_a_tasks_list():
    source = code(
        """
        from locust import User, constant

        def ping(user):
            pass

        def pong(user):
            pass

        class Pinger(User):
            wait_time = constant(1)
            tasks = [ping, pong, ping, (pong, 3)]
        """
    )

    user = analyze({"locustfile.py": source})["user_classes"][0]

    assert user["tasks"] == [method("ping", 3, weight=2), method("pong", 6, weight=4)]


def test_it_keeps_the_order_and_repeats_of_a_sequential_task_set():
    source = code(
        """
        from locust import HttpUser, SequentialTaskSet, task, constant

        def log_in(ts):
            ts.client.post("/login")

        class Checkout(SequentialTaskSet):
            tasks = [log_in]

            @task
            def add_to_cart(self):
                self.client.post("/cart")

            @task(2)
            def view_cart(self):
                self.client.get("/cart")

            @task
            def pay(self):
                self.client.post("/pay")

        class Buyer(HttpUser):
            wait_time = constant(1)
            tasks = [Checkout]

        class Repeat(SequentialTaskSet):
            tasks = [log_in, log_in]
        """
    )

    findings = analyze({"locustfile.py": source})
    checkout, repeat = findings["task_sets"]

    assert (checkout["name"], checkout["kind"]) == ("Checkout", "SequentialTaskSet")
    assert [(t["name"], t["weight"]) for t in checkout["tasks"]] == [
        ("log_in", 1), ("add_to_cart", 1), ("view_cart", 2), ("pay", 1)
    ]
    assert [(t["name"], t["weight"]) for t in repeat["tasks"]] == [("log_in", 1), ("log_in", 1)]


def test_it_recognises_markov_tasks_and_their_transitions():
    source = code(
        """
        from locust import HttpUser, MarkovTaskSet, transition, transitions, constant
        import locust

        class Shopping(MarkovTaskSet):
            @transition("browse")
            def index(self):
                self.client.get("/")

            @transition("index", weight=3)
            @transition("cart", 1)
            def browse(self):
                self.client.get("/products")

            @transitions({"checkout": 1, "browse": 3})
            def cart(self):
                self.client.get("/cart")

            @locust.user.markov_taskset.transitions([("index", 2), "browse"])
            def checkout(self):
                self.client.post("/checkout")

            def helper(self):
                pass

        class Shopper(HttpUser):
            wait_time = constant(1)
            tasks = [Shopping]
        """
    )

    findings = analyze({"locustfile.py": source})
    [chain] = findings["task_sets"]

    assert chain["kind"] == "MarkovTaskSet"
    assert [(t["name"], t["line"], t["transitions"]) for t in chain["tasks"]] == [
        ("index", 6, [["browse", 1]]),
        ("browse", 11, [["index", 3], ["cart", 1]]),
        ("cart", 15, [["checkout", 1], ["browse", 3]]),
        ("checkout", 19, [["index", 2], ["browse", 1]]),
    ]
    assert only_user(findings, "Shopper")["tasks"][0]["tasks"] == chain["tasks"]


def test_it_reports_a_load_shape_with_tick():
    source = QUICKSTART + code(
        """

        from locust import LoadTestShape

        class Steps(LoadTestShape):
            def tick(self):
                run_time = self.get_run_time()
                return (10, 10) if run_time < 60 else None
        """
    )

    findings = analyze({"locustfile.py": source})

    assert findings["shape"] == {"name": "Steps", "module": "locustfile.py", "line": 23, "has_tick": True}
    assert findings["warnings"] == []


def test_it_warns_about_a_load_shape_without_tick():
    source = QUICKSTART + code(
        """

        from locust import LoadTestShape

        class Flat(LoadTestShape):
            pass
        """
    )

    findings = analyze({"locustfile.py": source})

    assert findings["shape"] == {"name": "Flat", "module": "locustfile.py", "line": 23, "has_tick": False}
    assert findings["warnings"] == [
        "locustfile.py, line 23: load shape Flat has no tick() method: Locust cannot run the shape without it."
    ]


def test_it_understands_a_custom_user_with_its_own_client():
    source = code(
        """
        import time
        from locust import User, task, between

        class GrpcClient:
            def __init__(self, environment):
                self.environment = environment

            def call(self, name):
                start = time.perf_counter()
                self.environment.events.request.fire(
                    request_type="grpc", name=name, response_time=(time.perf_counter() - start) * 1000,
                    response_length=0, exception=None,
                )

        class GrpcUser(User):
            abstract = True

            def __init__(self, environment):
                super().__init__(environment)
                self.client = GrpcClient(environment)

        class Inventory(GrpcUser):
            wait_time = between(0.1, 0.5)

            @task
            def list_items(self):
                self.client.call("ListItems")

            def on_stop(self):
                self.client.call("Bye")
        """
    )

    findings = analyze({"locustfile.py": source})

    assert [(u["name"], u["root"], u["abstract"]) for u in findings["user_classes"]] == [
        ("GrpcUser", "User", True),
        ("Inventory", "User", False),
    ]
    inventory = only_user(findings, "Inventory")
    assert (inventory["has_on_start"], inventory["has_on_stop"], inventory["tasks"]) == (
        False, True, [method("list_items", 26)]
    )


BASE_MODULE = code(
    """
    from locust import HttpUser, task, between

    class ApiUser(HttpUser):
        abstract = True
        host = "https://api.example.com"
        wait_time = between(1, 2)

        def on_start(self):
            self.client.post("/token")

        @task
        def health(self):
            self.client.get("/health")

        @task
        def status(self):
            self.client.get("/status")
    """
)


def test_it_inherits_from_an_abstract_base_in_a_helper_module():
    locustfile = code(
        """
        from locust import task
        from common import ApiUser

        class Orders(ApiUser):
            weight = 2

            @task(5)
            def status(self):
                self.client.get("/orders/status")

            @task
            def list_orders(self):
                self.client.get("/orders")
        """
    )

    findings = analyze({"locustfile.py": locustfile, "common.py": BASE_MODULE})

    assert [(u["name"], u["module"], u["line"], u["abstract"]) for u in findings["user_classes"]] == [
        ("ApiUser", "common.py", 3, True),
        ("Orders", "locustfile.py", 4, False),
    ]
    orders = only_user(findings, "Orders")
    assert (orders["root"], orders["host"], orders["wait_time"], orders["has_on_start"]) == (
        "HttpUser", "https://api.example.com", "between(1, 2)", True
    )
    assert orders["tasks"] == [method("health", 12), method("status", 8, weight=5), method("list_orders", 12)]
    assert findings["warnings"] == []
    assert findings["modules"] == ["common.py", "locustfile.py"]


def test_it_follows_package_module_and_relative_imports():
    sources = {
        "locustfile.py": code(
            """
            import lib.base
            from lib import flows

            class Web(lib.base.ApiUser):
                tasks = [flows.Browse]
            """
        ),
        "lib/__init__.py": "",
        "lib/base.py": BASE_MODULE,
        "lib/flows.py": code(
            """
            from locust import TaskSet, task
            from .base import ApiUser

            class Browse(TaskSet):
                @task
                def home(self):
                    self.client.get("/")
            """
        ),
    }

    findings = analyze(sources)

    web = only_user(findings, "Web")
    assert (web["root"], web["wait_time"]) == ("HttpUser", "between(1, 2)")
    assert [(t["name"], t["kind"], t["tasks"]) for t in web["tasks"]] == [
        ("health", "method", []),
        ("status", "method", []),
        ("Browse", "taskset", [method("home", 6)]),
    ]
    assert findings["modules"] == ["lib/__init__.py", "lib/base.py", "lib/flows.py", "locustfile.py"]


def test_it_counts_user_classes_imported_into_the_locustfile():
    sources = {
        "locustfile.py": "from users import Reader\nfrom shapes import *\n",
        "users.py": code(
            """
            from locust import HttpUser, task, constant

            class Reader(HttpUser):
                wait_time = constant(2)

                @task
                def read(self):
                    self.client.get("/articles")

            class Writer(HttpUser):
                wait_time = constant(2)

                @task
                def write(self):
                    self.client.post("/articles")
            """
        ),
        "shapes.py": code(
            """
            from locust import LoadTestShape

            class _Hidden(LoadTestShape):
                def tick(self):
                    return None

            class Ramp(LoadTestShape):
                def tick(self):
                    return (100, 10)
            """
        ),
    }

    findings = analyze(sources)

    assert [(u["name"], u["module"]) for u in findings["user_classes"]] == [("Reader", "users.py")]
    assert findings["shape"] == {"name": "Ramp", "module": "shapes.py", "line": 7, "has_tick": True}


def test_it_counts_public_classes_from_a_star_import_of_a_helper_module():
    sources = {
        "locustfile.py": "from locust import *\nfrom personas import *\n",
        "personas.py": code(
            """
            from locust import HttpUser, task, between

            class Admin(HttpUser):
                wait_time = between(1, 2)

                @task
                def dashboard(self):
                    self.client.get("/admin")

            class _Internal(HttpUser):
                wait_time = between(1, 2)

                @task
                def secret(self):
                    self.client.get("/internal")
            """
        ),
    }

    findings = analyze(sources)

    assert [u["name"] for u in findings["user_classes"]] == ["Admin"]


def test_it_warns_about_a_user_without_tasks():
    source = code(
        """
        from locust import HttpUser, between

        class Idle(HttpUser):
            wait_time = between(1, 2)
        """
    )

    findings = analyze({"locustfile.py": source})

    assert findings["warnings"] == [
        "locustfile.py, line 3: Idle has no tasks: Locust will fail when it spawns this user."
    ]


def test_it_warns_about_a_user_without_wait_time():
    source = code(
        """
        from locust import HttpUser, task

        class Hammer(HttpUser):
            @task
            def index(self):
                self.client.get("/")
        """
    )

    findings = analyze({"locustfile.py": source})

    assert only_user(findings, "Hammer")["wait_time"] is None
    assert findings["warnings"] == [
        "locustfile.py, line 3: Hammer has no wait_time: users will send requests back to back. "
        "Set one, for example wait_time = between(1, 5)."
    ]


def test_it_describes_a_wait_time_method():
    source = code(
        """
        import random
        from locust import HttpUser, task

        class Jittery(HttpUser):
            def wait_time(self):
                return random.expovariate(1)

            @task
            def index(self):
                self.client.get("/")
        """
    )

    findings = analyze({"locustfile.py": source})

    assert (only_user(findings, "Jittery")["wait_time"], findings["warnings"]) == ("custom wait_time() method", [])


def test_it_does_not_warn_about_tasks_it_cannot_read():
    source = code(
        """
        from locust import HttpUser, constant
        from flows import build_tasks

        class Generated(HttpUser):
            wait_time = constant(1)
            tasks = build_tasks()
        """
    )

    findings = analyze({"locustfile.py": source})

    assert (only_user(findings, "Generated")["tasks"], findings["warnings"]) == ([], [])


def test_it_reports_a_task_set_from_outside_the_bundle_without_nested_tasks():
    source = code(
        """
        from locust import HttpUser, constant
        from locust_plugins.tasksets import CrawlTaskSet

        class Crawler(HttpUser):
            wait_time = constant(1)
            tasks = {CrawlTaskSet: 2}
        """
    )

    user = analyze({"locustfile.py": source})["user_classes"][0]

    assert user["tasks"] == [
        {"name": "CrawlTaskSet", "kind": "taskset", "weight": 2, "tags": [], "line": None, "tasks": [],
         "transitions": None}
    ]


def test_it_ignores_a_local_class_that_merely_shares_a_locust_name():
    source = code(
        """
        from locust import task

        class HttpUser:
            pass

        class Impostor(HttpUser):
            @task
            def index(self):
                pass
        """
    )

    error = failure({"locustfile.py": source})

    assert error.message == (
        "No User class found in locustfile.py: define a class deriving from HttpUser, FastHttpUser or User."
    )
    assert (error.path, error.line) == ("locustfile.py", None)


def test_it_ignores_a_base_name_that_is_never_imported():
    source = "class Web(HttpUser):\n    pass\n"

    assert failure({"locustfile.py": source}).message == (
        "No User class found in locustfile.py: define a class deriving from HttpUser, FastHttpUser or User."
    )


def test_it_rejects_a_locustfile_with_only_abstract_users():
    source = code(
        """
        from locust import HttpUser, task

        class Base(HttpUser):
            abstract = True

            @task
            def index(self):
                pass
        """
    )

    error = failure({"locustfile.py": source})

    assert str(error) == (
        "No User class found in locustfile.py: define a class deriving from HttpUser, FastHttpUser or User. "
        "(Base is marked abstract = True.)"
    )


def test_it_rejects_users_defined_only_in_a_helper_module_that_is_not_imported():
    sources = {
        "locustfile.py": "import common\n\nPAGES = ['/', '/about']\n",
        "common.py": code(
            """
            from locust import HttpUser, task, constant

            class Reader(HttpUser):
                wait_time = constant(1)

                @task
                def read(self):
                    self.client.get("/")
            """
        ),
    }

    assert failure(sources).message == (
        "No User class found in locustfile.py: define a class deriving from HttpUser, FastHttpUser or User. "
        "(common.py defines Reader, but locustfile.py does not import it.)"
    )


def test_it_reports_a_syntax_error_with_line_column_and_source():
    source = "from locust import HttpUser\n\nclass Web(HttpUser)\n    pass\n"

    error = failure({"locustfile.py": source})

    assert (error.message, error.path, error.line, error.column, error.source_line) == (
        "expected ':'", "locustfile.py", 3, 20, "class Web(HttpUser)"
    )
    assert str(error) == "locustfile.py, line 3, column 20: expected ':'"


def test_it_reports_invalid_syntax_in_a_helper_module():
    sources = {"locustfile.py": QUICKSTART, "lib/util.py": "def pick(:\n    return 1\n"}

    error = failure(sources)

    assert str(error) == "lib/util.py, line 1, column 10: invalid syntax"
    assert error.source_line == "def pick(:"


def test_it_reports_an_indentation_error():
    source = "from locust import HttpUser, task\n\nclass Web(HttpUser):\n@task\ndef index(self):\n    pass\n"

    error = failure({"locustfile.py": source})

    assert (error.message, error.line, error.column, error.source_line) == (
        "expected an indented block after class definition on line 3", 4, 1, "@task"
    )


def test_it_reports_mixed_tabs_and_spaces():
    source = "if True:\n\tx = 1\n        y = 2\n"

    error = failure({"locustfile.py": source})

    assert str(error) == "locustfile.py, line 3, column 1: inconsistent use of tabs and spaces in indentation"


def test_it_reports_a_nul_byte_with_its_position():
    source = "x = 1\ny = 2\x00\n"

    error = failure({"locustfile.py": source})

    assert str(error) == "locustfile.py, line 2, column 6: The file contains a NUL byte, so it is not Python source."
    assert error.source_line == "y = 2\\0"


def test_it_reports_absurdly_nested_code_instead_of_crashing():
    source = "x = " + "+".join(["1"] * 200_000) + "\n"

    error = failure({"locustfile.py": source})

    assert error.message == "locustfile.py is nested too deeply for Python to parse; simplify the deepest expression."
    assert error.path == "locustfile.py"


def test_it_reports_a_missing_entry_point():
    assert failure({"helpers.py": "X = 1\n"}).message == "The bundle has no locustfile.py."


def test_it_never_runs_the_code_it_analyses(tmp_path):
    marker = tmp_path / "pwned"
    source = code(
        f"""
        import os
        from locust import HttpUser, task, constant

        open({str(marker)!r}, "w").write("ran")
        os.system("touch {marker}")
        raise SystemExit("module body executed")

        class Web(HttpUser):
            wait_time = constant(1)
            host = __import__("os").getcwd()

            @task(len(open({str(marker)!r}, "w").name))
            def index(self):
                self.client.get("/")
        """
    )

    findings = analyze({"locustfile.py": source, "helper.py": f"open({str(marker)!r}, 'w')\n"})

    assert only_user(findings, "Web")["tasks"] == [method("index", 13, weight=None)]
    assert not marker.exists()


def test_it_survives_import_and_inheritance_cycles():
    sources = {
        "locustfile.py": code(
            """
            from a import Looped
            from locust import HttpUser, task, constant

            class Web(HttpUser):
                wait_time = constant(1)

                @task
                def index(self):
                    pass
            """
        ),
        "a.py": "from b import Looped\n",
        "b.py": "from a import Looped\n\nclass X(Y):\n    pass\n\nclass Y(X):\n    pass\n",
    }

    assert [u["name"] for u in analyze(sources)["user_classes"]] == ["Web"]


def test_it_lists_warnings_in_file_order_across_modules():
    sources = {
        "locustfile.py": code(
            """
            from locust import HttpUser
            from shapes import Flat

            class Idle(HttpUser):
                pass
            """
        ),
        "shapes.py": "from locust import LoadTestShape\n\nclass Flat(LoadTestShape):\n    pass\n",
    }

    assert analyze(sources)["warnings"] == [
        "locustfile.py, line 4: Idle has no tasks: Locust will fail when it spawns this user.",
        "locustfile.py, line 4: Idle has no wait_time: users will send requests back to back. "
        "Set one, for example wait_time = between(1, 5).",
        "shapes.py, line 3: load shape Flat has no tick() method: Locust cannot run the shape without it.",
    ]


def test_it_bounds_the_result_when_task_sets_reference_each_other_many_times():
    levels = ["from locust import HttpUser, SequentialTaskSet, task, constant", "", "class L0(SequentialTaskSet):",
              "    @task", "    def leaf(self): ..."]
    for level in range(1, 15):
        below = f"L{level - 1}"
        levels += [f"class L{level}(SequentialTaskSet):", f"    tasks = [{below}, {below}, {below}]"]
    levels += ["class Deep(HttpUser):", "    wait_time = constant(1)", "    tasks = [L14]"]

    findings = analyze({"locustfile.py": "\n".join(levels) + "\n"})

    def count(tasks):
        return sum(1 + count(task["tasks"]) for task in tasks)

    assert count(only_user(findings, "Deep")["tasks"]) < 6000
    assert len(findings["task_sets"]) == 15
