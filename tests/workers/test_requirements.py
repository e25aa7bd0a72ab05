"""requirements.txt rules: plain requirements from the worker's index, never replacing Swarmdeck's packages."""

import importlib.metadata

import pytest

from workers.requirements import RequirementsRefused, parse

LOCUST = importlib.metadata.version("locust")


def test_it_keeps_plain_requirements_and_drops_comments_and_blank_lines():
    wanted = parse("# tools\npyquery==2.0.1\n\nFaker>=20  # names\nrequests\n")
    assert wanted.lines == ("pyquery==2.0.1", "Faker>=20", "requests")
    assert wanted.text == "pyquery==2.0.1\nFaker>=20\nrequests\n"


@pytest.mark.parametrize("line, says", [
    ("-e git+https://example.invalid/x.git#egg=x", "pip options"),
    ("--index-url https://example.invalid/simple", "pip options"),
    ("-r other.txt", "pip options"),
    ("--find-links /tmp", "pip options"),
    ("-c constraints.txt", "pip options"),
    ("https://example.invalid/pkg-1.0.tar.gz", "URLs and direct references"),
    ("pkg @ https://example.invalid/pkg.whl", "URLs and direct references"),
    ("pkg@file:///tmp/pkg", "URLs and direct references"),
    ("./vendor/pkg", "local paths"),
    ("/opt/wheels/pkg-1.0-py3-none-any.whl", "local paths"),
    ("pkg-1.0.tar.gz", "local paths"),
    ("not a requirement!", "not a requirement"),
    ("pyquery \\", "line continuations"),
])
def test_it_refuses_anything_that_fetches_from_elsewhere(line, says):
    with pytest.raises(RequirementsRefused) as refused:
        parse(f"requests\n{line}\n")
    assert str(refused.value).startswith("requirements.txt line 2 (")
    assert says in str(refused.value)


def test_it_refuses_replacing_the_load_engine_and_allows_its_own_version():
    with pytest.raises(RequirementsRefused) as refused:
        parse("locust==1.0\n")
    assert f"would replace Swarmdeck's locust {LOCUST}" in str(refused.value)
    assert parse(f"locust=={LOCUST}\n").lines == (f"locust=={LOCUST}",)
    assert parse("gevent>=1\n").lines == ("gevent>=1",)


def test_requirements_for_another_platform_are_skipped():
    assert parse('pywin32==306; sys_platform == "win32"\nrequests\n').lines == ("requests",)


def test_its_digest_names_the_set_not_its_order_or_comments():
    assert parse("a==1\nb==2\n").digest == parse("# x\nb==2\na==1  # y\n").digest
    assert parse("a==1\n").digest != parse("a==2\n").digest


def test_it_bounds_the_file():
    with pytest.raises(RequirementsRefused, match="more than 500 lines"):
        parse("a\n" * 501)
