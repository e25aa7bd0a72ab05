"""Custom locustfile options: what the static analysis reads from init_command_line_parser
listeners, and how scenarios.options checks, converts and masks a run's values."""

import json
import textwrap

import pytest

from scenarios import analysis
from scenarios import options as locust_options

USER = '''

class U(HttpUser):
    wait_time = constant(1)

    @task
    def t(self):
        pass
'''


def findings_of(source: str, **files) -> dict:
    sources = {"locustfile.py": textwrap.dedent(source) + USER, **files}
    return analysis.analyze(sources)


def by_dest(findings) -> dict:
    return {option["dest"]: option for option in findings["options"]}


OPTIONS = '''\
import os
from locust import HttpUser, events, task, constant


@events.init_command_line_parser.add_listener
def _(parser):
    parser.add_argument("--region", choices=["eu", "us"], default="us", help="Where the users are")
    parser.add_argument("--pages", type=int, default=1, help="Pages per visit")
    parser.add_argument("--ratio", type=float, default=os.environ.get("RATIO", "0.5"))
    parser.add_argument("--api-key", is_secret=True, default="s3cret", help="The key")
    parser.add_argument("--debug-users", action="store_true", include_in_web_ui=False)
    parser.add_argument("--tenant", required=True)
'''


def test_it_reads_names_defaults_types_choices_help_and_flags():
    options = by_dest(findings_of(OPTIONS))
    assert list(options) == ["region", "pages", "ratio", "api_key", "debug_users", "tenant"]
    region = options["region"]
    assert (region["name"], region["type"], region["default"], region["choices"], region["help"]) == (
        "--region", "str", "us", ["eu", "us"], "Where the users are")
    assert region["include_in_web_ui"] is True and region["is_secret"] is False and region["required"] is False
    assert region["module"] == "locustfile.py" and region["line"] == 7
    assert (options["pages"]["type"], options["pages"]["default"]) == ("int", 1)
    assert options["api_key"]["is_secret"] is True and options["api_key"]["name"] == "--api-key"
    flag = options["debug_users"]
    assert (flag["type"], flag["default"], flag["include_in_web_ui"]) == ("bool", False, False)
    assert options["tenant"]["required"] is True and options["tenant"]["default"] is None


def test_a_computed_default_is_listed_as_computed_at_start():
    ratio = by_dest(findings_of(OPTIONS))["ratio"]
    assert ratio["type"] == "float"
    assert ratio["default_known"] is False and ratio["default"] is None
    assert ratio["default_text"] == analysis.COMPUTED_DEFAULT == "(computed at start)"


def test_it_finds_listeners_registered_by_a_call_and_through_import_locust():
    findings = findings_of('''\
        import locust
        from locust import HttpUser, task, constant


        def add_mine(parser, **kwargs):
            group = parser.add_argument_group("mine")
            group.add_argument("--mode", default="fast", help=f"computed help")
            if True:
                parser.add_argument("-w", "--warmup", type=int, default="5")


        locust.events.init_command_line_parser.add_listener(add_mine)


        @locust.events.init_command_line_parser.add_listener
        def more(parser):
            parser.add_argument("--level", dest="log_level", choices=(1, 2, 3), default=2, type=int)


        def not_a_listener(parser):
            parser.add_argument("--ignored")
        ''')
    options = by_dest(findings)
    assert list(options) == ["mode", "warmup", "log_level"]
    assert options["warmup"]["default"] == 5  # argparse converts a string default with the option's type
    assert options["warmup"]["flags"] == ["-w", "--warmup"]
    assert options["log_level"]["name"] == "--level" and options["log_level"]["choices"] == [1, 2, 3]
    assert options["mode"]["help"] == "f'computed help'"  # not a literal: its source, never evaluated
    assert json.loads(json.dumps(findings)) == findings


def test_it_finds_a_listener_in_a_helper_module_of_the_bundle():
    helper = textwrap.dedent('''\
        from locust import events

        @events.init_command_line_parser.add_listener
        def _(parser):
            parser.add_argument("--shop", default="de")
        ''')
    findings = findings_of("from locust import HttpUser, task, constant\nimport common\n", **{"common.py": helper})
    [shop] = findings["options"]
    assert (shop["dest"], shop["default"], shop["module"]) == ("shop", "de", "common.py")


def test_a_locustfile_without_listeners_has_no_options():
    assert findings_of("from locust import HttpUser, task, constant\n")["options"] == []


def test_an_unreadable_secret_flag_counts_as_secret():
    findings = findings_of('''\
        from locust import HttpUser, events, task, constant
        SECRET = True

        @events.init_command_line_parser.add_listener
        def _(parser):
            parser.add_argument("--token", is_secret=SECRET)
        ''')
    assert findings["options"][0]["is_secret"] is True


# -- checking a run's values -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def declared():
    return findings_of(OPTIONS.replace('    parser.add_argument("--tenant", required=True)\n', ""))


def test_it_converts_values_to_the_options_types(declared):
    values = locust_options.clean(declared, {"region": "eu", "pages": "3", "--ratio": 0.25, "debug-users": "true"})
    assert values == {"region": "eu", "pages": 3, "ratio": 0.25, "debug_users": True}
    assert locust_options.clean(declared, {"pages": 3, "region": None}) == {"pages": 3}
    assert locust_options.clean(declared, None) == {}


@pytest.mark.parametrize("given,name,words", [
    ({"regoin": "eu"}, "regoin", ["Unknown option 'regoin'", "--region, --pages"]),
    ({"region": "asia"}, "--region", ["--region must be one of eu, us", "'asia'"]),
    ({"pages": "three"}, "--pages", ["--pages takes a whole number", "'three'"]),
    ({"pages": True}, "--pages", ["--pages takes a whole number"]),
    ({"ratio": "fast"}, "--ratio", ["--ratio takes a number"]),
    ({"debug_users": "maybe"}, "--debug-users", ["--debug-users is a flag"]),
    ({"region": ["eu"]}, "--region", ["--region takes a string"]),
])
def test_it_refuses_unknown_options_wrong_types_and_choices_naming_them(declared, given, name, words):
    with pytest.raises(locust_options.OptionError) as refused:
        locust_options.clean(declared, given)
    assert list(refused.value.errors) == [name]
    assert all(word in refused.value.errors[name] for word in words), refused.value.errors


def test_it_says_when_a_locustfile_has_no_options_and_when_a_required_one_is_missing():
    with pytest.raises(locust_options.OptionError) as refused:
        locust_options.clean(findings_of("from locust import HttpUser, task, constant\n"), {"region": "eu"})
    assert "adds no command-line options" in refused.value.errors["region"]
    with pytest.raises(locust_options.OptionError) as missing:
        locust_options.clean(findings_of(OPTIONS), {"region": "eu"})
    assert "--tenant is required" in missing.value.errors["--tenant"]
    with pytest.raises(locust_options.OptionError):
        locust_options.clean(findings_of(OPTIONS), ["region", "eu"])


def test_secret_values_and_defaults_are_masked_wherever_shown(declared):
    values = locust_options.clean(declared, {"api_key": "hunter2", "region": "eu"})
    params = {"users": 1, "options": values, "secret_options": locust_options.secret_names(declared, values)}
    assert params["secret_options"] == ["api_key"]
    shown = locust_options.masked_params(params)
    assert shown["options"] == {"api_key": locust_options.MASK, "region": "eu"}
    assert params["options"]["api_key"] == "hunter2"  # the run keeps the value for its slots
    assert "hunter2" not in json.dumps(locust_options.rows(declared, params))
    assert "s3cret" not in json.dumps(locust_options.shown(declared))
    rows = {row["name"]: row for row in locust_options.rows(declared, params)}
    assert rows["--region"] == {"name": "--region", "value": "eu", "default": False}
    assert rows["--pages"] == {"name": "--pages", "value": "1", "default": True}
