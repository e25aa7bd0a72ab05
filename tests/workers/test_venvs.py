"""Environments per requirements digest: real pip, offline, from wheels this test builds."""

import subprocess
import threading
import zipfile

import pytest

from workers import requirements, venvs


def make_wheel(directory, name: str, version: str = "1.0", requires: tuple[str, ...] = ()) -> None:
    dist = f"{name}-{version}"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{name}/__init__.py": f'VALUE = "{name} {version}"\n',
             f"{dist}.dist-info/METADATA": metadata,
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                        "Tag: py3-none-any\n"}
    files[f"{dist}.dist-info/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(directory / f"{dist}-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A find-links directory as the worker's only package source (no network)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return wheels


@pytest.fixture
def cache(tmp_path):
    return venvs.Settings(root=tmp_path / "venvs", cap_bytes=2**30, timeout=120)


def _python(env: venvs.Environment, code: str) -> str:
    return subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_it_builds_an_environment_on_top_of_swarmdecks_packages_and_reuses_it(index, cache):
    make_wheel(index, "swarmdeck_tinypkg")
    wanted = requirements.parse("swarmdeck_tinypkg==1.0\n")
    lines: list[str] = []
    with venvs.use(wanted, lines.append, cache) as env:
        assert env.built and env.path == cache.root / wanted.digest
        seen = _python(env, "import swarmdeck_tinypkg, locust, gevent; print(swarmdeck_tinypkg.VALUE); "
                            "print(locust.__file__)")
    tiny, locust_file = seen.splitlines()
    assert tiny == "swarmdeck_tinypkg 1.0"
    assert locust_file.startswith(venvs._base_paths()[0])  # the pinned locust, not a copy
    assert any("Successfully installed swarmdeck_tinypkg-1.0" in line for line in lines), lines
    with venvs.use(wanted, settings=cache) as again:
        assert not again.built and again.path == env.path


def test_a_missing_package_fails_with_pips_message(index, cache):
    with pytest.raises(venvs.PipFailed) as failed:
        with venvs.use(requirements.parse("swarmdeck_no_such_pkg==9\n"), settings=cache):
            pass
    assert "No matching distribution found for swarmdeck_no_such_pkg==9" in str(failed.value)
    assert not (cache.root / requirements.parse("swarmdeck_no_such_pkg==9\n").digest).exists()


def test_a_dependency_that_would_upgrade_a_base_package_fails(index, cache):
    make_wheel(index, "swarmdeck_greedy", requires=("gevent>=999",))
    with pytest.raises(venvs.PipFailed) as failed:
        with venvs.use(requirements.parse("swarmdeck_greedy\n"), settings=cache):
            pass
    assert "swarmdeck-greedy 1.0 depends on gevent>=999" in str(failed.value)
    assert "Swarmdeck keeps its own packages" in str(failed.value)
    assert "loosen" not in str(failed.value)


def test_two_slots_asking_at_once_build_once(index, cache):
    make_wheel(index, "swarmdeck_tinypkg")
    wanted = requirements.parse("swarmdeck_tinypkg\n")
    built: list[bool] = []

    def slot():
        with venvs.use(wanted, settings=cache) as env:
            built.append(env.built)

    threads = [threading.Thread(target=slot) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(built) == [False, True]


def test_the_cache_evicts_the_least_recently_used_environment_not_in_use(index, cache):
    for name in ("swarmdeck_a", "swarmdeck_b", "swarmdeck_c"):
        make_wheel(index, name)
    small = venvs.Settings(root=cache.root, cap_bytes=1, timeout=120)  # every new build evicts what it can
    a, b, c = (requirements.parse(f"{name}\n") for name in ("swarmdeck_a", "swarmdeck_b", "swarmdeck_c"))
    with venvs.use(a, settings=small):
        with venvs.use(b, settings=small):  # a is in use: kept
            assert (small.root / a.digest / venvs.COMPLETE).exists()
        with venvs.use(c, settings=small):  # b is not in use any more: evicted; a still is
            assert not (small.root / b.digest).exists()
            assert (small.root / a.digest / venvs.COMPLETE).exists()
