"""Trends like for like: only runs with the parameters and labels asked for, said in words, and markers where
the locustfile version or the labels changed from one run to the next."""

import datetime as dt
import re

from django.urls import reverse

from runs import trends
from runs.models import Run
from tests.locustfiles import SHOP_V2
from tests.runs.test_history import NOW, _new_version, make_run


def _run(scenario, alice, minutes_ago, users=10, slots=1, labels=None, version=None, p95=100.0):
    run = make_run(scenario, alice, created_at=NOW - dt.timedelta(minutes=minutes_ago), version=version,
                   params={"users": users, "spawn_rate": 1.0, "duration": 60, "host": "http://shop.test",
                           "slots": slots},
                   requests=1000, rps=50.0, p50=10.0, p95=p95, p99=200.0)
    if labels:
        Run.objects.filter(pk=run.pk).update(labels=labels)
    return run


def test_it_trends_only_the_runs_with_the_parameters_and_labels_asked_for(client, alice, scenario):
    small = _run(scenario, alice, 60, users=5, labels={"env": "staging"})
    big_prod = _run(scenario, alice, 50, users=50, slots=2, labels={"env": "prod"})
    big_staging = [_run(scenario, alice, 40 - i, users=50, slots=2, labels={"env": "staging"}, p95=100.0 + i)
                   for i in range(3)]
    _run(scenario, alice, 20, users=50, slots=1, labels={"env": "staging"})
    client.force_login(alice)
    url = reverse("runs-trends-data", args=[scenario.pk])

    data = client.get(url, {"users": "50", "slots": "2", "label": "env=staging"}).json()
    assert data["ids"] == [run.pk for run in big_staging]
    assert data["p95_ms"] == [100.0, 101.0, 102.0]
    assert data["description"] == "all 3 finished runs with 50 users, 2 slots and env=staging"
    assert data["mixed"] == "" and data["problems"] == []

    assert client.get(url, {"users": 50, "slots": 2}).json()["ids"] == [big_prod.pk] + [r.pk for r in big_staging]
    assert client.get(url, {"label": "env=prod"}).json()["ids"] == [big_prod.pk]
    assert client.get(url, {"users": 5}).json()["ids"] == [small.pk]
    assert client.get(url, {"duration": "1m", "spawn_rate": "1", "host": "http://shop.test",
                            "label": "env=staging"}).json()["count"] == 5
    assert client.get(url, {"duration": "2m"}).json()["count"] == 0

    everything = client.get(url, {"n": 2}).json()
    assert everything["description"] == "the last 2 finished runs"
    assert everything["mixed"] == "slots 1 and 2"  # the last two: 50 users on 2 slots, then on 1


def test_the_page_says_what_it_shows_and_offers_parameter_sets_and_labels(client, alice, scenario):
    for minutes, users in ((30, 5), (29, 10), (28, 10), (27, 15)):
        _run(scenario, alice, minutes, users=users, labels={"env": "staging", "sut_version": f"1.{minutes}"})
    client.force_login(alice)
    url = reverse("runs-trends", args=[scenario.pk])

    page = client.get(url).content.decode()
    assert "Headline figures of all 4 finished runs, oldest on the left." in page
    assert "These runs were started with different parameters (users 5, 10 and 15)" in page
    groups = page[page.index('id="trend-groups"'):]
    assert '<a href="?users=10&amp;slots=1&amp;spawn_rate=1.0&amp;duration=60&amp;host=http%3A%2F%2Fshop.test">' \
           '10 users</a> <span class="muted">(2)</span>' in groups
    assert '<a href="?label=env%3Dstaging" class="mono">staging</a>' in groups

    response = client.get(url, {"users": "10", "label": "env=staging", "n": "10"})
    page = response.content.decode()
    assert "Headline figures of all 2 finished runs with 10 users and env=staging" in page
    assert "different parameters" not in page
    chips = page[page.index('id="trend-chips"'):]
    assert '<span class="chip">10 users<a href="?label=env%3Dstaging&amp;n=10"' in chips
    assert '<span class="chip">env=staging<a href="?users=10&amp;n=10"' in chips
    assert '<input type="hidden" name="label" value="env=staging">' in page
    assert '<option value="sut_version=1.29">' in page  # the labels of these runs, offered for the filter


def test_it_names_bad_trend_filters_and_applies_the_good_ones(client, alice, scenario):
    _run(scenario, alice, 10, users=5)
    wanted = _run(scenario, alice, 9, users=5, labels={"env": "staging"})
    client.force_login(alice)
    data = client.get(reverse("runs-trends-data", args=[scenario.pk]),
                      {"users": "lots", "slots": "0", "label": ["staging", "env=staging"]}).json()
    assert data["ids"] == [wanted.pk]
    assert data["problems"] == ["Users: Users is a whole number, e.g. 50.",
                                "Slots: Ensure this value is greater than or equal to 1.",
                                "“staging” is not a label filter: write key=value, e.g. env=staging."]
    page = client.get(reverse("runs-trends", args=[scenario.pk]), {"users": "99"}).content.decode()
    assert "Only runs with 99 users are shown, and none of this scenario&#x27;s 2 finished runs has them." in page


def test_it_marks_locustfile_version_and_label_changes_between_runs(client, alice, scenario):
    v1 = scenario.current_version
    first = _run(scenario, alice, 50, labels={"sut_version": "1.4.2", "env": "staging"}, version=v1)
    same = _run(scenario, alice, 40, labels={"env": "staging", "sut_version": "1.4.2"}, version=v1)
    bumped = _run(scenario, alice, 30, labels={"sut_version": "1.4.3", "env": "staging"}, version=v1)
    v2 = _new_version(scenario, alice, SHOP_V2)
    new_file = _run(scenario, alice, 20, labels={"sut_version": "1.4.3", "env": "staging"}, version=v2)
    both = _run(scenario, alice, 10, labels={"sut_version": "1.4.3", "commit": "abc123"}, version=v1)
    client.force_login(alice)

    data = client.get(reverse("runs-trends-data", args=[scenario.pk])).json()
    assert data["ids"] == [first.pk, same.pk, bumped.pk, new_file.pk, both.pk]
    assert data["markers"] == [
        {"t": 2.5, "kind": "labels", "label": "sut_version=1.4.3",
         "text": f"Labels from run #{bumped.pk}: sut_version=1.4.3"},
        {"t": 3.5, "kind": "version", "label": f"v{v2.number}",
         "text": f"Locustfile v{v1.number} → v{v2.number} from run #{new_file.pk}"},
        {"t": 4.5, "kind": "version", "label": f"v{v1.number}",
         "text": f"Locustfile v{v2.number} → v{v1.number} from run #{both.pk}"},
        {"t": 4.5, "kind": "labels", "label": "commit=abc123 −env",
         "text": f"Labels from run #{both.pk}: commit=abc123 −env"},
    ]
    assert [point["version"] for point in data["points"]] == [v1.number] * 3 + [v2.number, v1.number]
    page = client.get(reverse("runs-trends", args=[scenario.pk])).content.decode()
    assert '"kind": "version"' in page
    assert "Dashed lines mark where the locustfile version or the labels changed." in page


def test_a_long_label_change_is_shortened_on_the_chart_and_whole_in_its_note():
    points = [{"index": 1, "id": 1, "version": 1, "labels": {}},
              {"index": 2, "id": 2, "version": 1, "labels": {"commit": "0123456789abcdef0123456789abcdef"}}]
    [marker] = trends.markers(points)
    assert len(marker["label"]) == trends.MARKER_LABEL_LENGTH and marker["label"].endswith("…")
    assert marker["text"] == "Labels from run #2: commit=0123456789abcdef0123456789abcdef"


def test_a_label_that_changes_with_every_run_is_not_marked_and_the_page_says_so(client, alice, scenario):
    runs = [_run(scenario, alice, 50 - i, labels={"commit": f"c{i}", "env": "prod" if i == 3 else "staging"})
            for i in range(5)]
    client.force_login(alice)
    data = client.get(reverse("runs-trends-data", args=[scenario.pk])).json()
    assert data["unmarked_labels"] == ["commit"]
    assert [(m["t"], m["label"]) for m in data["markers"]] == [(3.5, "env=prod"), (4.5, "env=staging")]
    assert data["markers"][0]["text"] == f"Labels from run #{runs[3].pk}: env=prod"
    page = client.get(reverse("runs-trends", args=[scenario.pk])).content.decode()
    assert "(not commit, which changes with every run)" in page
    # Over fewer runs, every change is marked.
    few = client.get(reverse("runs-trends-data", args=[scenario.pk]), {"n": 3}).json()
    assert few["unmarked_labels"] == []
    assert [m["label"] for m in few["markers"]] == ["commit=c3 env=prod", "commit=c4 env=staging"]


def _empty_state(page: str) -> str:
    """The empty state's words, tags dropped and spaces collapsed."""
    block = page[page.index('id="trend-empty"'):]
    block = block[:block.index("</div>")]
    return " ".join(re.sub(r"<[^>]+>", " ", block.split(">", 1)[1]).replace("&#x27;", "'").split())


def test_with_no_finished_run_the_page_says_to_start_one(client, alice, scenario):
    make_run(scenario, alice, status=Run.Status.FAILED)
    client.force_login(alice)
    page = client.get(reverse("runs-trends", args=[scenario.pk])).content.decode()
    assert "all 0" not in page and 'id="trend-data"' not in page
    assert _empty_state(page) == (
        "No finished runs yet A trend draws the response times, requests per second and failure % of this "
        "scenario's finished runs, one point a run, once 2 runs have finished. Start a run and let it finish "
        "(failed and cancelled runs do not count). Start a run")
    assert f'<a href="{reverse("runs-create", args=[scenario.pk])}">Start a run</a>' in page
    data = client.get(reverse("runs-trends-data", args=[scenario.pk]), {"users": 5}).json()
    assert data["description"] == "no finished runs with 5 users"


def test_with_no_run_matching_the_filters_the_page_names_them_and_how_to_widen(client, alice, scenario, bob,
                                                                                bob_membership):
    for minutes in (30, 20, 10):
        _run(scenario, alice, minutes, users=10, labels={"env": "staging"})
    client.force_login(bob)  # a viewer: nothing to start
    page = client.get(reverse("runs-trends", args=[scenario.pk]),
                      {"users": "50", "label": "env=prod"}).content.decode()
    assert _empty_state(page) == (
        "No finished run matches these filters Only runs with 50 users and env=prod are shown, and none of this "
        "scenario's 3 finished runs has them. Widen the filter: remove a filter with its × above. "
        "Show all 3 finished runs")
    assert f'<a href="{reverse("runs-trends", args=[scenario.pk])}">Show all 3 finished runs</a>' in page
    assert reverse("runs-create", args=[scenario.pk]) not in page
    assert '<span class="chip">50 users<a href="?label=env%3Dprod"' in page  # the × the words point to


def test_with_one_run_the_page_names_it_and_says_to_run_again_or_widen(client, alice, scenario):
    first = _run(scenario, alice, 30, users=10)
    client.force_login(alice)
    url = reverse("runs-trends", args=[scenario.pk])
    assert _empty_state(client.get(url).content.decode()) == (
        f"Only one finished run so far A trend draws a line from 2 finished runs on, and run #{first.pk} is the only "
        f"one. Run the scenario again to see how its figures move. Open run #{first.pk} · Start a run")
    _run(scenario, alice, 20, users=50)
    assert _empty_state(client.get(url, {"users": "10"}).content.decode()) == (
        f"Only one finished run matches these filters A trend draws a line from 2 finished runs on, and of this "
        f"scenario's 2 finished runs only run #{first.pk} has 10 users. Run the scenario again with these parameters "
        f"and labels, or widen the filter: remove a filter with its × above. Open run #{first.pk} · "
        "Show all 2 finished runs · Start a run")
