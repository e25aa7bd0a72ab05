"""Locustfiles written for plain Locust run unchanged in a slot (nginx target, short runs)."""

from tests.workers.conftest import locustfile

RUN_SECONDS = 2.0


def run_against(slot_run, target, name, seconds=RUN_SECONDS, **params):
    target.reset()
    run = slot_run(locustfile(name), host=target.url, **params)
    run.run_for(seconds)
    assert run.result == "finished", run.events
    assert run.types()[-1] == "done" and run.snapshots()[-1]["kind"] == "final"
    return run


def served(target, method, uri, status=200):
    return target.counts().get((method, uri, status), 0)


def test_it_runs_an_http_user(slot_run, target):
    run = run_against(slot_run, target, "http_user", users=3)
    totals = run.totals()
    for uri in ("/ok", "/json"):
        assert totals[("GET", uri)]["requests"] > 10
        assert abs(totals[("GET", uri)]["requests"] - served(target, "GET", uri)) <= 3
    assert totals[("GET", "/ok")]["requests"] > totals[("GET", "/json")]["requests"]  # task weights 3:1
    assert totals[("GET", "/ok")]["failures"] == 0


def test_it_runs_a_fast_http_user_and_counts_server_errors_as_failures(slot_run, target):
    run = run_against(slot_run, target, "fast_http_user", users=2)
    totals = run.totals()
    assert abs(totals[("GET", "/static10k")]["requests"] - served(target, "GET", "/static10k")) <= 2
    assert totals[("GET", "/static10k")]["avg_size"] == 10240
    errors = totals[("GET", "/status/500")]
    assert errors["requests"] > 5 and errors["failures"] == errors["requests"]
    assert abs(errors["requests"] - served(target, "GET", "/status/500", 500)) <= 2
    assert any(row["name"] == "/status/500" for row in run.stats().error_rows())


def test_it_runs_nested_tasksets(slot_run, target):
    run = run_against(slot_run, target, "tasksets", users=2)
    totals = run.totals()
    assert totals[("GET", "/json")]["requests"] > 10 and totals[("GET", "/ok")]["requests"] > 0
    assert abs(run.requests() - target.total()) <= 2


def test_it_keeps_the_order_of_a_sequential_taskset(slot_run, target):
    run = run_against(slot_run, target, "sequential", users=1, seconds=1.5)
    uris = [uri for _, uri, _ in target.lines()]
    assert len(uris) > 30
    cycle = ["/ok", "/json", "/delay/1ms"]
    assert uris[:3] == cycle
    assert all(uri == cycle[i % 3] for i, uri in enumerate(uris))
    assert abs(run.requests() - len(uris)) <= 1


def test_it_follows_the_transitions_of_a_markov_taskset(slot_run, target):
    run_against(slot_run, target, "markov", users=1, seconds=1.5)
    uris = [uri for _, uri, _ in target.lines()]
    chain = {"/ok": "/json", "/json": "/static10k", "/static10k": "/ok"}
    assert len(uris) > 30 and uris[0] == "/ok"
    assert all(chain[a] == b for a, b in zip(uris, uris[1:]))


def test_it_includes_only_the_requested_tags(slot_run, target):
    run_against(slot_run, target, "tagged", users=2, seconds=1.0, tags=["api"])
    assert {uri for _, uri, _ in target.lines()} == {"/json"}


def test_it_excludes_tags(slot_run, target):
    run_against(slot_run, target, "tagged", users=2, seconds=1.0, exclude_tags=["api"])
    assert {uri for _, uri, _ in target.lines()} == {"/ok", "/delay/1ms"}


def test_it_logs_in_on_start(slot_run, target):
    run = run_against(slot_run, target, "login", users=3, seconds=1.0)
    assert served(target, "POST", "/ok") == 3
    totals = run.totals()
    assert totals[("POST", "login")]["requests"] == 3
    assert abs(totals[("GET", "/json")]["requests"] - served(target, "GET", "/json")) <= 3
    assert run.stats().exception_rows() == []


def test_it_honours_catch_response(slot_run, target):
    run = run_against(slot_run, target, "catch_response", users=2, seconds=1.0)
    totals = run.totals()
    strict, lenient = totals[("GET", "/json")], totals[("GET", "/status/500")]
    assert strict["requests"] > 5 and strict["failures"] == strict["requests"]
    assert lenient["requests"] > 5 and lenient["failures"] == 0
    assert served(target, "GET", "/status/500", 500) - lenient["requests"] in (0, 1, 2)
    errors = run.stats().error_rows()
    assert [(e["name"], e["error"]) for e in errors] == [("/json", "CatchResponseError('ok was true, expected false')")]


def test_it_scales_a_load_test_shape_to_its_share_and_ends_with_it(slot_run, target):
    target.reset()
    run = slot_run(locustfile("shape"), host=target.url, users=1, slot_index=1, slots=2)
    run.start()
    run.wait_for("ready", 20)
    run.go()
    assert run.join(20) == "finished"  # the shape ended the test: no stop needed
    snapshots = run.snapshots()
    assert snapshots[-1]["kind"] == "final" and run.types()[-1] == "done"
    users = [s["users"] for s in snapshots[:-1]]
    assert users[0] == 2 and max(users) == 4  # half of 4, then half of 8
    assert 2.8 < snapshots[-1]["elapsed"] < 6
    assert abs(run.requests() - target.total()) <= 4


def test_it_records_a_custom_client_and_exceptions(slot_run, target):
    run = run_against(slot_run, target, "custom_client", users=2, seconds=1.0)
    totals = run.totals()
    select, drop = totals[("custom", "select")], totals[("custom", "drop")]
    assert select["requests"] > 10 and select["failures"] == 0 and select["min_ms"] >= 1.5
    assert drop["requests"] > 0 and drop["failures"] == drop["requests"]
    assert target.total() == 0
    exceptions = run.stats().exception_rows()
    assert exceptions[0]["message"] == "ZeroDivisionError: a bug in the locustfile"
    assert "crash" in exceptions[0]["traceback"]
