"""workers.bundle.extract: what a load worker writes to disk from a stored bundle.

The zips here are forged by hand, as if they had never been through an upload: the worker
trusts nothing it receives, re-validates with the upload's own rules and budget, and writes
only the accepted files, never outside its directory.
"""

import hashlib
import io
import os
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from workers import bundle
from workers.bundle import BundleError, check_sha256, extract, read_upload

LOCUSTFILE = (
    b"from locust import HttpUser, task\n\nclass Web(HttpUser):\n    @task\n    def index(self):\n        pass\n"
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def forge(*members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """Members are (name or ZipInfo, content); names are written exactly as given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def everything_under(path: Path) -> set[str]:
    """Every file, folder and link below path, relative to it ('/' separators)."""
    return {str(p.relative_to(path)).replace(os.sep, "/") for p in path.rglob("*")}


@pytest.fixture
def sandbox(tmp_path):
    """A directory to extract into, inside a parent whose every other content is checked afterwards."""
    (tmp_path / "outside").mkdir()
    target = tmp_path / "bundle"
    target.mkdir()
    yield target
    assert everything_under(tmp_path / "outside") == set(), "something was written outside the bundle directory"
    assert {p.name for p in tmp_path.iterdir()} == {"outside", "bundle"}


def test_it_writes_a_single_locustfile(sandbox):
    root = extract("py", LOCUSTFILE, sandbox)

    assert root == sandbox.resolve()
    assert everything_under(sandbox) == {"locustfile.py"}
    assert (root / "locustfile.py").read_bytes() == LOCUSTFILE


def test_it_writes_only_the_accepted_files_at_the_root(sandbox):
    data = forge(
        ("proj/", b""),
        ("proj/locustfile.py", LOCUSTFILE),
        ("proj/lib/util.py", b"X = 1\n"),
        ("proj/lib/__pycache__/util.cpython-311.pyc", b"\xa7\r\r\n\x00"),
        ("proj/lib/util.pyc", b"\xa7\r\r\n\x00"),
        ("proj/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("__MACOSX/proj/._locustfile.py", b"\x00\x05\x16\x07"),
    )

    root = extract("zip", data, sandbox)

    assert root == sandbox.resolve()
    assert everything_under(sandbox) == {"locustfile.py", "lib", "lib/util.py"}
    assert (root / "lib" / "util.py").read_bytes() == b"X = 1\n"
    assert (root / "locustfile.py").read_bytes() == LOCUSTFILE


def test_it_extracts_what_an_upload_stored_without_its_ignored_pyc(sandbox):
    uploaded = read_upload("shop.zip", forge(("locustfile.py", LOCUSTFILE), ("helpers.pyc", b"\xa7\r\r\n\x00"),
                                             ("helpers.py", b"def go():\n    pass\n")))

    root = extract("zip", uploaded.content, sandbox, sha256=hashlib.sha256(uploaded.content).hexdigest())

    assert everything_under(root) == set(uploaded.files) == {"helpers.py", "locustfile.py"}


def test_it_creates_the_directory_when_it_is_missing(tmp_path):
    root = extract("py", LOCUSTFILE, tmp_path / "a" / "b")

    assert (root / "locustfile.py").read_bytes() == LOCUSTFILE


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../outside/evil.py", "'../outside/evil.py' contains '..'; bundle paths must stay inside the bundle."),
        ("lib/../../outside/evil.py",
         "'lib/../../outside/evil.py' contains '..'; bundle paths must stay inside the bundle."),
        ("__MACOSX/../../outside/x",
         "'__MACOSX/../../outside/x' contains '..'; bundle paths must stay inside the bundle."),
        ("/tmp/evil.py", "'/tmp/evil.py' is an absolute path; bundle paths must be relative to the bundle root."),
        ("C:/evil.py", "'C:/evil.py' is an absolute path; bundle paths must be relative to the bundle root."),
        ("..\\outside\\evil.py",
         ("'..\\outside\\evil.py' uses backslashes in its path; "
          "re-create the zip with a tool that writes '/' separators.")),
    ],
)
def test_it_refuses_forged_paths_that_escape_and_writes_nothing(sandbox, name, message):
    data = forge(("locustfile.py", LOCUSTFILE), (name, b"import os\n"))

    with pytest.raises(BundleError) as caught:
        extract("zip", data, sandbox)

    assert caught.value.message == message
    assert everything_under(sandbox) == set()


def test_it_refuses_a_symlink_entry_and_writes_nothing(sandbox):
    outside = sandbox.parent / "outside"
    data = forge(("locustfile.py", LOCUSTFILE), (symlink_entry("lib"), str(outside).encode()),
                 ("lib/util.py", b"X = 1\n"))

    with pytest.raises(BundleError) as caught:
        extract("zip", data, sandbox)

    assert caught.value.message == "'lib' in bundle.zip is a symbolic link; bundles may only contain regular files."
    assert everything_under(sandbox) == set()


def test_it_refuses_an_ignored_symlink_entry(sandbox):
    data = forge(("locustfile.py", LOCUSTFILE), (symlink_entry("__MACOSX/._locustfile.py"), b"/etc/passwd"))

    with pytest.raises(BundleError) as caught:
        extract("zip", data, sandbox)

    assert "is a symbolic link" in caught.value.message
    assert everything_under(sandbox) == set()


def test_it_refuses_a_bomb_with_the_upload_budget(sandbox):
    data = forge(("locustfile.py", LOCUSTFILE), ("__MACOSX/._zeros", bytes(60 * 1024 * 1024)))

    with pytest.raises(BundleError) as caught:
        extract("zip", data, sandbox)

    assert caught.value.message.startswith("bundle.zip unpacks to 60.0 MB")
    assert everything_under(sandbox) == set()


def test_it_refuses_a_member_whose_headers_lie_about_its_size(sandbox):
    data = bytearray(forge(("locustfile.py", LOCUSTFILE), ("zeros.csv", bytes(20 * 1024 * 1024))))
    position = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)  # central header of the second member
    struct.pack_into("<I", data, position + 24, 1000)
    struct.pack_into("<I", data, struct.unpack_from("<I", data, position + 42)[0] + 22, 1000)

    with pytest.raises(BundleError) as caught:
        extract("zip", bytes(data), sandbox)

    assert caught.value.message == "'zeros.csv' in bundle.zip is damaged and cannot be unpacked."
    assert everything_under(sandbox) == set()


def test_it_refuses_a_forged_compiled_module(sandbox):
    data = forge(("locustfile.py", LOCUSTFILE), ("fast.cpython-311-x86_64-linux-gnu.so", b"\x7fELF"))

    with pytest.raises(BundleError) as caught:
        extract("zip", data, sandbox)

    assert caught.value.message == (
        "'fast.cpython-311-x86_64-linux-gnu.so' in bundle.zip is a compiled module; Swarmdeck runs only source it "
        "can show (install packages with native code on the load workers instead)."
    )
    assert everything_under(sandbox) == set()


def test_it_refuses_garbage_and_unknown_kinds_as_bundle_errors(sandbox):
    with pytest.raises(BundleError) as garbage:
        extract("zip", b"not a zip", sandbox)
    with pytest.raises(BundleError) as unknown:
        extract("tar", b"data", sandbox)

    assert garbage.value.message == "bundle.zip is not a valid zip file (it may be damaged or truncated)."
    assert unknown.value.message == "Unknown bundle kind 'tar'; expected 'py' or 'zip'."


def test_it_does_not_follow_a_symlinked_folder_already_in_the_directory(sandbox):
    (sandbox / "lib").symlink_to(sandbox.parent / "outside", target_is_directory=True)
    data = forge(("locustfile.py", LOCUSTFILE), ("lib/util.py", b"X = 1\n"))

    with pytest.raises(BundleError) as caught:
        extract("zip", data, sandbox)

    assert caught.value.path == "lib/util.py"
    (sandbox / "lib").unlink()  # the sandbox fixture then checks that outside/ stayed empty


def test_it_does_not_write_through_a_symlinked_file_already_in_the_directory(sandbox):
    victim = sandbox.parent / "outside" / "victim.py"
    (sandbox / "locustfile.py").symlink_to(victim)

    with pytest.raises(BundleError) as caught:
        extract("py", LOCUSTFILE, sandbox)

    assert caught.value.path == "locustfile.py"
    assert not victim.exists()
    (sandbox / "locustfile.py").unlink()


def test_it_checks_the_expected_sha256_before_writing_anything(sandbox):
    with pytest.raises(BundleError) as caught:
        extract("py", LOCUSTFILE, sandbox, sha256=hashlib.sha256(b"something else").hexdigest())

    assert caught.value.message == (
        "The locustfile bundle arrived damaged (its sha256 does not match the stored version)."
    )
    assert everything_under(sandbox) == set()


def test_it_accepts_a_matching_sha256_in_any_case():
    check_sha256(LOCUSTFILE, hashlib.sha256(LOCUSTFILE).hexdigest().upper())

    with pytest.raises(BundleError):
        check_sha256(LOCUSTFILE, "")


def test_it_uses_the_same_limits_as_the_upload(monkeypatch, sandbox):
    monkeypatch.setattr(bundle, "MAX_FILES", 2)
    data = forge(("locustfile.py", LOCUSTFILE), ("a.py", b""), ("b.py", b""))

    with pytest.raises(BundleError) as caught:
        extract("zip", data, sandbox)

    assert caught.value.message == "bundle.zip contains 3 files; a bundle may contain at most 2."


def test_it_imports_without_django_or_the_web_app():
    code = ("import sys, workers.bundle\n"
            "loaded = {m.split('.')[0] for m in sys.modules}\n"
            "print(sorted(loaded & {'django', 'scenarios', 'runs', 'locust', 'gevent'}))")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env,
                            timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
