"""workers.pool_options: a run's option values become the command line Locust's parser reads, so
`environment.parsed_options` is what `locust -f locustfile.py --region eu ...` would give."""

import argparse
import json
import subprocess
import sys
import textwrap

import pytest

from controlcenter.env import BASE_DIR
from workers.pool_options import OptionsError, command_line


@pytest.fixture
def parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--region", default="us")
    parser.add_argument("-p", type=int, dest="pages", default=1)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--verbose-users", action="store_true")
    parser.add_argument("--no-cache", dest="cache", action="store_false")
    parser.add_argument("--hosts", nargs="+")
    return parser


def test_it_writes_the_command_line_a_user_would_type(parser):
    args = command_line(parser, {"region": "eu", "pages": 3, "offset": -5, "verbose_users": True, "cache": False,
                                 "hosts": ["a", "b"]})
    assert args == ["--region=eu", "-p", "3", "--offset=-5", "--verbose-users", "--no-cache", "--hosts", "a", "b"]
    parsed = parser.parse_args(args)
    assert (parsed.region, parsed.pages, parsed.offset, parsed.verbose_users, parsed.cache, parsed.hosts) == (
        "eu", 3, -5, True, False, ["a", "b"])
    assert command_line(parser, {"verbose_users": False, "cache": True}) == []  # the defaults: no flag


def test_an_option_the_parser_does_not_have_is_refused_by_name(parser):
    with pytest.raises(OptionsError, match="no option 'colour'"):
        command_line(parser, {"colour": "red"})


def test_locusts_own_parser_gives_the_types_and_defaults(tmp_path):
    """In a child process (importing locust patches the process with gevent), as the pool does."""
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(textwrap.dedent('''\
        from locust import User, events, task

        @events.init_command_line_parser.add_listener
        def _(parser):
            parser.add_argument("--region", choices=["eu", "us"], default="us")
            parser.add_argument("--pages", type=int, default=1)
            parser.add_argument("--ratio", type=float, default=0.5)
            parser.add_argument("--debug-users", action="store_true", include_in_web_ui=False)

        class U(User):
            @task
            def t(self):
                pass
        '''))
    script = textwrap.dedent(f'''\
        import json, sys
        from locust.util.load_locustfile import load_locustfile
        from workers.pool_options import OptionsError, parse
        load_locustfile({str(locustfile)!r})
        parsed = parse({str(locustfile)!r}, {{"region": "eu", "pages": 3, "debug_users": True}})
        print(json.dumps([parsed.region, parsed.pages, parsed.ratio, parsed.debug_users, parsed.locustfile]))
        try:
            parse({str(locustfile)!r}, {{"region": "asia"}})
        except OptionsError as error:
            print(error)
        ''')
    result = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    values, refusal = result.stdout.strip().splitlines()[-2:]
    assert json.loads(values) == ["eu", 3, 0.5, True, str(locustfile)]
    assert refusal.startswith("Locust refused the run's options:") and "invalid choice: 'asia'" in refusal
