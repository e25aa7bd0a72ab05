"""Pass/fail criteria through the API: set with their window, listed, refused as the criteria page refuses."""

from runs.models import Threshold

URL = "/api/scenarios/{}/criteria/"


def test_a_maintainer_adds_a_windowed_criterion_and_lists_it(as_alice, scenario):
    answer = as_alice.post_json(URL.format(scenario.pk), {"metric": "p95", "value": 300, "window_seconds": 60,
                                                          "window": "any", "abort_on_fail": True})
    assert answer.status_code == 201, answer.content
    saved = Threshold.objects.get(scenario=scenario)
    assert (saved.window_seconds, saved.window, saved.abort_on_fail, saved.enabled) == (60, "any", True, True)
    whole = as_alice.post_json(URL.format(scenario.pk), {"metric": "failure_ratio", "value": 5})
    assert whole.status_code == 201 and whole.json()["window_seconds"] == 0
    listed = as_alice.get(URL.format(scenario.pk)).json()["criteria"]
    assert [(c["criterion"], c["window_seconds"], c["window"]) for c in listed] == [
        ("p95 of total in any 60 s window ≤ 300 ms", 60, "any"), ("failure ratio of total ≤ 5%", 0, "last")]


def test_it_refuses_a_window_on_the_baseline_rule_and_bad_fields(as_alice, scenario):
    url = URL.format(scenario.pk)
    baseline = as_alice.post_json(url, {"metric": "p95_baseline", "value": 20, "window_seconds": 30})
    assert baseline.status_code == 400
    assert baseline.json()["errors"]["window_seconds"] == [
        "The baseline rule compares the p95 of whole runs: it has no window. Leave the window empty, or pick p95 "
        "with a window."]
    assert as_alice.post_json(url, {"metric": "p95", "value": 300, "window": "sometimes"}).json()["errors"].keys() \
        == {"window"}
    assert as_alice.post_json(url, {"metric": "p95", "value": 300, "abort_on_fail": 1}).json()["errors"] == {
        "abort_on_fail": ["Expected true or false, got 1."]}
    assert "windows" in as_alice.post_json(url, {"metric": "p95", "value": 300, "windows": 60}).json()["errors"]
    assert not Threshold.objects.exists()
