"""Uploads are hostile until proven otherwise: each rule of scenarios.bundles (workers.bundle) is exercised with a
crafted file."""

import io
import os
import stat
import struct
import warnings
import zipfile

import pytest

from scenarios import bundles
from scenarios.bundles import Bundle, BundleError, open_stored, read_upload
from workers import bundle as engine

LOCUSTFILE = (
    b"from locust import HttpUser, task\n\n"
    b"class Web(HttpUser):\n    @task\n    def index(self):\n        self.client.get('/')\n"
)


def make_zip(*members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """Members are (name or ZipInfo, content) pairs, written in the order given."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests write on purpose
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, content in members:
                archive.writestr(name, content)
    return buffer.getvalue()


def set_member_flags(data: bytes, name: str, flag_bits: int) -> bytes:
    """Set general-purpose flag bits on one member, in both its central and its local header."""
    patched = bytearray(data)
    position = patched.find(b"PK\x01\x02")
    while position >= 0:
        name_length = struct.unpack_from("<H", patched, position + 28)[0]
        if bytes(patched[position + 46 : position + 46 + name_length]) == name.encode():
            flags = struct.unpack_from("<H", patched, position + 8)[0] | flag_bits
            struct.pack_into("<H", patched, position + 8, flags)
            local = struct.unpack_from("<I", patched, position + 42)[0]
            struct.pack_into("<H", patched, local + 6, flags)
        position = patched.find(b"PK\x01\x02", position + 4)
    return bytes(patched)


def set_declared_size(data: bytes, name: str, size: int) -> bytes:
    """Make one member's headers lie about how big it is once unpacked."""
    patched = bytearray(data)
    position = patched.find(b"PK\x01\x02")
    while position >= 0:
        name_length = struct.unpack_from("<H", patched, position + 28)[0]
        if bytes(patched[position + 46 : position + 46 + name_length]) == name.encode():
            struct.pack_into("<I", patched, position + 24, size)
            local = struct.unpack_from("<I", patched, position + 42)[0]
            struct.pack_into("<I", patched, local + 22, size)
        position = patched.find(b"PK\x01\x02", position + 4)
    return bytes(patched)


def special_file(name: str, file_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (file_type | 0o777) << 16
    return info


def rejection(filename: str, data: bytes) -> BundleError:
    with pytest.raises(BundleError) as caught:
        read_upload(filename, data)
    return caught.value


# --- single .py uploads ---


def test_it_stores_a_single_py_upload_as_locustfile_whatever_its_name():
    bundle = read_upload("Checkout_Test.PY", LOCUSTFILE)

    assert bundle == Bundle(
        kind="py",
        files={"locustfile.py": LOCUSTFILE},
        sources={"locustfile.py": LOCUSTFILE.decode()},
        ignored=(),
    )
    assert bundle.total_size == len(LOCUSTFILE)


def test_it_rejects_an_extension_that_is_neither_py_nor_zip():
    error = rejection("x.txt", b"print('hi')")

    assert error.message == "Upload a .py locustfile or a .zip bundle; 'x.txt' is neither."
    assert str(error) == error.message


def test_it_names_only_the_base_name_of_a_browser_supplied_path():
    error = rejection("C:\\fakepath\\notes.tar.gz", b"data")

    assert error.message == "Upload a .py locustfile or a .zip bundle; 'notes.tar.gz' is neither."


def test_it_rejects_an_empty_py_file():
    assert rejection("load.py", b"").message == "load.py is empty."


def test_it_rejects_a_py_file_of_only_whitespace():
    assert rejection("load.py", b"  \n\t\n\r\n").message == "load.py contains only whitespace; there is no code in it."


def test_it_rejects_a_py_file_over_the_limit_stating_limit_and_size():
    data = b"# " + b"x" * bundles.MAX_PY_BYTES

    assert rejection("big.py", data).message == (
        "big.py is 1.0 MB (1,048,578 bytes); a single locustfile may be at most 1 MB."
    )


def test_it_accepts_a_py_file_exactly_at_the_limit():
    data = b"x = 1\n" + b"#" * (bundles.MAX_PY_BYTES - 6)

    assert read_upload("edge.py", data).total_size == bundles.MAX_PY_BYTES


def test_it_rejects_a_py_file_that_is_not_utf8_with_line_column_and_byte():
    data = b"from locust import HttpUser\n# ok\nNAME = 'caf\xe9'\n"

    error = rejection("load.py", data)

    assert error.message == "load.py is not valid UTF-8 (line 3, column 12, byte 0xe9) — save it as UTF-8."
    assert error.path == "load.py"


def test_it_counts_the_column_in_characters_not_bytes():
    data = "s = 'ü€'".encode() + b"\xff\n"

    assert rejection("load.py", data).message == (
        "load.py is not valid UTF-8 (line 1, column 9, byte 0xff) — save it as UTF-8."
    )


def test_it_rejects_a_binary_py_file():
    data = b"\x7fELF\x02\x01\x01\x00\x00\x00"

    assert rejection("load.py", data).message == "load.py looks like a binary file, not Python source."


def test_it_rejects_utf16_source_asking_for_utf8():
    data = "x = 1\n".encode("utf-16")

    assert rejection("load.py", data).message == "load.py is saved as UTF-16 — save it as UTF-8."


def test_it_strips_a_utf8_bom_from_the_source_text_only():
    data = b"\xef\xbb\xbf" + LOCUSTFILE

    bundle = read_upload("load.py", data)

    assert bundle.sources["locustfile.py"] == LOCUSTFILE.decode()
    assert bundle.files["locustfile.py"] == data


# --- zip bundles: accepted shapes ---


def test_it_reads_a_zip_with_helpers_and_data_files():
    data = make_zip(
        ("locustfile.py", LOCUSTFILE),
        ("lib/", b""),
        ("lib/util.py", b"def pick():\n    return 1\n"),
        ("data/users.csv", b"name\nann\n"),
    )

    bundle = read_upload("Shop.ZIP", data)

    assert bundle.kind == "zip"
    assert list(bundle.files) == ["data/users.csv", "lib/util.py", "locustfile.py"]
    assert bundle.files["data/users.csv"] == b"name\nann\n"
    assert bundle.sources == {"lib/util.py": "def pick():\n    return 1\n", "locustfile.py": LOCUSTFILE.decode()}
    assert bundle.ignored == ()
    assert bundle.total_size == len(LOCUSTFILE) + 25 + 9


def test_it_reads_stored_members_as_well_as_deflated_ones():
    data = make_zip(("locustfile.py", LOCUSTFILE), compression=zipfile.ZIP_STORED)

    assert read_upload("b.zip", data).files == {"locustfile.py": LOCUSTFILE}


def test_it_normalises_dot_segments_and_double_slashes():
    data = make_zip(("./locustfile.py", LOCUSTFILE), ("lib//./util.py", b"X = 1\n"))

    assert list(read_upload("b.zip", data).files) == ["lib/util.py", "locustfile.py"]


def test_it_strips_the_single_folder_a_zipped_folder_is_wrapped_in():
    data = make_zip(
        ("myproj/", b""),
        ("myproj/locustfile.py", LOCUSTFILE),
        ("myproj/lib/util.py", b"X = 1\n"),
        ("__MACOSX/myproj/._locustfile.py", b"\x00\x05\x16\x07"),
    )

    bundle = read_upload("myproj.zip", data)

    assert list(bundle.files) == ["lib/util.py", "locustfile.py"]
    assert bundle.ignored == ("__MACOSX/myproj/._locustfile.py",)


def test_it_ignores_macos_and_python_litter():
    data = make_zip(
        ("locustfile.py", LOCUSTFILE),
        ("__MACOSX/._locustfile.py", b"\x00\x05\x16\x07"),
        (".DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("lib/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("lib/__pycache__/util.cpython-311.pyc", b"\xa7\r\r\n\x00"),
        ("old.pyc", b"\xa7\r\r\n\x00"),
    )

    bundle = read_upload("b.zip", data)

    assert list(bundle.files) == ["locustfile.py"]
    assert bundle.ignored == (
        "__MACOSX/._locustfile.py",
        ".DS_Store",
        "lib/.DS_Store",
        "lib/__pycache__/util.cpython-311.pyc",
        "old.pyc",
    )


def test_it_accepts_exactly_the_maximum_number_of_files():
    members = [("locustfile.py", LOCUSTFILE)] + [(f"data/{n}.txt", b"x") for n in range(bundles.MAX_FILES - 1)]

    assert len(read_upload("b.zip", make_zip(*members)).files) == bundles.MAX_FILES


def test_it_does_not_count_ignored_files_against_the_file_limit_but_against_the_entry_limit():
    members = [("locustfile.py", LOCUSTFILE)] + [(f"__MACOSX/{n}", b"x") for n in range(bundles.MAX_FILES)]

    assert len(read_upload("b.zip", make_zip(*members)).ignored) == bundles.MAX_FILES


def test_it_reopens_a_stored_py_blob_identically():
    uploaded = read_upload("whatever.py", LOCUSTFILE)

    assert open_stored("py", LOCUSTFILE) == uploaded


def test_it_reopens_a_stored_zip_blob_identically():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("data/", b""), ("data/users.csv", b"a,b\n"))
    uploaded = read_upload("proj.zip", data)

    assert open_stored("zip", uploaded.content) == uploaded


def test_it_reopens_what_it_stores_for_a_wrapped_zip_with_litter_with_the_same_files_and_nothing_ignored():
    data = make_zip(("proj/locustfile.py", LOCUSTFILE), ("proj/data.csv", b"a,b\n"), ("__MACOSX/x", b""))
    uploaded = read_upload("proj.zip", data)

    reopened = open_stored("zip", uploaded.content)

    assert (reopened.files, reopened.sources) == (uploaded.files, uploaded.sources)
    assert reopened.ignored == ()


def test_it_revalidates_a_stored_blob():
    data = make_zip(("../evil.py", b"x = 1\n"), ("locustfile.py", LOCUSTFILE))

    with pytest.raises(BundleError) as caught:
        open_stored("zip", data)

    assert caught.value.message == "'../evil.py' contains '..'; bundle paths must stay inside the bundle."


def test_it_refuses_an_unknown_stored_kind():
    with pytest.raises(ValueError) as caught:
        open_stored("tar", b"data")

    assert str(caught.value) == "Unknown bundle kind 'tar'; expected 'py' or 'zip'."


# --- zip bundles: rejected shapes ---


def test_it_rejects_an_empty_zip_upload():
    assert rejection("b.zip", b"").message == "b.zip is empty."


def test_it_rejects_a_zip_with_no_files_in_it():
    assert rejection("b.zip", make_zip(("docs/", b""))).message == "b.zip contains no files."


def test_it_rejects_a_zip_over_the_limit_stating_limit_and_size():
    data = b"PK" + b"\x00" * bundles.MAX_ZIP_BYTES

    assert rejection("b.zip", data).message == (
        "b.zip is 10.0 MB (10,485,762 bytes); a zip bundle may be at most 10 MB."
    )


def test_it_rejects_a_file_that_is_not_a_zip():
    assert rejection("b.zip", b"this is not a zip archive").message == (
        "b.zip is not a valid zip file (it may be damaged or truncated)."
    )


def test_it_rejects_a_truncated_zip():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("data.csv", os.urandom(4000)))

    assert rejection("b.zip", data[: len(data) // 2]).message == (
        "b.zip is not a valid zip file (it may be damaged or truncated)."
    )


def test_it_rejects_a_member_whose_content_is_corrupt():
    data = bytearray(make_zip(("locustfile.py", LOCUSTFILE), compression=zipfile.ZIP_STORED))
    data[30 + len("locustfile.py") + 5] ^= 0xFF  # flip a content byte so the CRC no longer matches

    error = rejection("b.zip", bytes(data))

    assert error.message == "'locustfile.py' in b.zip is damaged and cannot be unpacked."
    assert error.path == "locustfile.py"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil.py", "'../evil.py' contains '..'; bundle paths must stay inside the bundle."),
        ("lib/../../evil.py", "'lib/../../evil.py' contains '..'; bundle paths must stay inside the bundle."),
        ("/abs.py", "'/abs.py' is an absolute path; bundle paths must be relative to the bundle root."),
        ("C:/x.py", "'C:/x.py' is an absolute path; bundle paths must be relative to the bundle root."),
        ("\\x.py", "'\\x.py' is an absolute path; bundle paths must be relative to the bundle root."),
        (
            "a\\b.py",
            "'a\\b.py' uses backslashes in its path; re-create the zip with a tool that writes '/' separators.",
        ),
    ],
)
def test_it_rejects_member_names_that_escape_the_bundle(name, message):
    error = rejection("b.zip", make_zip(("locustfile.py", LOCUSTFILE), (name, b"x = 1\n")))

    assert (error.message, error.path) == (message, name)


def test_it_rejects_a_nul_byte_in_a_member_name():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("evilXname.py", b"x = 1\n"))
    data = data.replace(b"evilXname.py", b"evil\x00name.py")

    assert rejection("b.zip", data).message == "'evil\\0name.py' has a NUL byte in its name; rename it."


def test_it_rejects_a_symlink_member():
    data = make_zip(("locustfile.py", LOCUSTFILE), (special_file("data/passwd", stat.S_IFLNK), b"/etc/passwd"))

    error = rejection("b.zip", data)

    assert error.message == "'data/passwd' in b.zip is a symbolic link; bundles may only contain regular files."
    assert error.path == "data/passwd"


def test_it_rejects_other_non_regular_members():
    data = make_zip(("locustfile.py", LOCUSTFILE), (special_file("pipe", stat.S_IFIFO), b""))

    assert rejection("b.zip", data).message == (
        "'pipe' in b.zip is not a regular file; bundles may only contain regular files."
    )


def test_it_rejects_an_encrypted_member():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("secret.py", b"TOKEN = 'x'\n"))
    data = set_member_flags(data, "secret.py", 0x1)

    error = rejection("b.zip", data)

    assert error.message == "'secret.py' in b.zip is encrypted; upload a zip without a password."
    assert error.path == "secret.py"


def test_it_rejects_a_duplicated_member_name():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("locustfile.py", b"import os\n"))

    assert rejection("b.zip", data).message == "'locustfile.py' appears more than once in b.zip."


def test_it_rejects_names_that_are_duplicates_once_normalised():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("lib/util.py", b""), ("./lib//util.py", b""))

    assert rejection("b.zip", data).message == "'lib/util.py' appears more than once in b.zip."


def test_it_rejects_names_that_differ_only_in_case():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("Data.csv", b"a"), ("data.csv", b"b"))

    assert rejection("b.zip", data).message == "'data.csv' appears more than once in b.zip."


def test_it_rejects_a_path_that_is_both_a_file_and_a_folder():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("lib", b"x"), ("lib/util.py", b""))

    assert rejection("b.zip", data).message == "'lib' in b.zip is both a file and a folder."


def test_it_rejects_more_than_the_maximum_number_of_files():
    members = [("locustfile.py", LOCUSTFILE)] + [(f"data/{n}.txt", b"x") for n in range(bundles.MAX_FILES)]

    assert rejection("b.zip", make_zip(*members)).message == (
        "b.zip contains 201 files; a bundle may contain at most 200."
    )


def test_it_rejects_a_zip_bomb_by_its_unpacked_size():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("zeros.bin", bytes(60 * 1024 * 1024)))
    assert len(data) < 100 * 1024

    assert rejection("bomb.zip", data).message == (
        f"bomb.zip unpacks to 60.0 MB ({60 * 1024 * 1024 + len(LOCUSTFILE):,} bytes); "
        "a bundle may unpack to at most 50 MB."
    )


def test_it_rejects_a_member_with_an_absurd_compression_ratio():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("zeros.csv", bytes(2 * 1024 * 1024)))

    error = rejection("b.zip", data)

    assert error.message == "'zeros.csv' in b.zip expands more than 200 times when unpacked; it looks like a zip bomb."
    assert error.path == "zeros.csv"


def test_it_accepts_a_well_compressed_file_below_the_bomb_threshold():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("zeros.csv", bytes(1024 * 1024)))

    assert len(read_upload("b.zip", data).files["zeros.csv"]) == 1024 * 1024


def test_it_rejects_a_member_whose_headers_understate_its_size():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("zeros.bin", bytes(60 * 1024 * 1024)))
    data = set_declared_size(data, "zeros.bin", 1000)

    assert rejection("bomb.zip", data).message == "'zeros.bin' in bomb.zip is damaged and cannot be unpacked."


def test_it_stops_reading_once_the_unpacked_budget_is_spent(monkeypatch):
    # Pretend the headers lied in a way the fast pre-check cannot see; the running budget must still hold.
    monkeypatch.setattr(engine, "_declared_size", lambda members: 0)
    monkeypatch.setattr(engine, "MAX_UNPACKED_BYTES", 1024 * 1024)
    data = make_zip(
        ("a.bin", os.urandom(512 * 1024)),
        ("b.bin", os.urandom(400 * 1024)),
        ("c.bin", os.urandom(300 * 1024)),
        ("locustfile.py", LOCUSTFILE),
    )

    error = rejection("b.zip", data)

    assert error.message == "b.zip unpacks to more than 1 MB (the limit was reached while reading 'c.bin')."
    assert error.path == "c.bin"


def test_it_lists_where_py_files_were_found_when_the_root_has_no_locustfile():
    data = make_zip(("README.md", b"# load test\n"), ("src/locustfile.py", LOCUSTFILE), ("src/util.py", b""))

    error = rejection("b.zip", data)

    assert error.message == "The bundle has no locustfile.py at its root (found: src/locustfile.py, src/util.py)."
    assert error.path == "locustfile.py"


def test_it_reports_paths_as_zipped_when_a_wrapped_folder_still_lacks_a_locustfile():
    data = make_zip(("proj/src/locustfile.py", LOCUSTFILE), ("proj/data.csv", b"a\n"))

    assert rejection("b.zip", data).message == (
        "The bundle has no locustfile.py at its root (found: proj/src/locustfile.py)."
    )


def test_it_says_so_when_a_zip_has_no_python_at_all():
    data = make_zip(("data.csv", b"a\n"), ("notes.txt", b"hi\n"))

    assert rejection("b.zip", data).message == (
        "The bundle has no locustfile.py at its root (it contains no .py files)."
    )


def test_it_rejects_a_non_utf8_python_member_naming_it():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("lib/names.py", b"A = 1\nB = 'Jos\xe9'\n"))

    error = rejection("b.zip", data)

    assert error.message == "lib/names.py is not valid UTF-8 (line 2, column 9, byte 0xe9) — save it as UTF-8."
    assert error.path == "lib/names.py"


def test_it_rejects_a_binary_python_member():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("lib/native.py", b"\x7fELF\x02\x01\x01\x00"))

    assert rejection("b.zip", data).message == "lib/native.py looks like a binary file, not Python source."


def test_it_allows_non_utf8_data_files_and_empty_helper_modules():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("lib/__init__.py", b""), ("data/latin1.csv", b"Jos\xe9\n"))

    bundle = read_upload("b.zip", data)

    assert bundle.files["data/latin1.csv"] == b"Jos\xe9\n"
    assert bundle.sources["lib/__init__.py"] == ""


def test_it_strips_a_bom_from_a_python_member():
    data = make_zip(("locustfile.py", b"\xef\xbb\xbf" + LOCUSTFILE))

    assert read_upload("b.zip", data).sources["locustfile.py"] == LOCUSTFILE.decode()


def test_it_rejects_an_empty_locustfile_inside_a_zip():
    data = make_zip(("locustfile.py", b"\n\n"), ("util.py", b"X = 1\n"))

    assert rejection("b.zip", data).message == "locustfile.py in b.zip is empty; there is no code in it."


# --- ignored members get every check before they are dropped ---


def stored_names(bundle: Bundle) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        return archive.namelist()


def test_it_refuses_a_200_mb_bomb_hidden_in_an_ignored_macos_member():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("__MACOSX/._blob", bytes(200 * 1024 * 1024)))
    assert len(data) < 300 * 1024

    assert rejection("b.zip", data).message == (
        f"b.zip unpacks to 200.0 MB ({200 * 1024 * 1024 + len(LOCUSTFILE):,} bytes); "
        "a bundle may unpack to at most 50 MB."
    )


def test_it_refuses_an_ignored_member_whose_headers_understate_its_size():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("__MACOSX/._blob", bytes(200 * 1024 * 1024)))
    data = set_declared_size(data, "__MACOSX/._blob", 1000)

    error = rejection("b.zip", data)

    assert error.message == "'__MACOSX/._blob' in b.zip is damaged and cannot be unpacked."
    assert error.path == "__MACOSX/._blob"


def test_it_refuses_an_ignored_member_with_an_absurd_compression_ratio():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("lib/__pycache__/util.cpython-311.pyc", bytes(2 * 1024 * 1024)))

    assert rejection("b.zip", data).message == (
        "'lib/__pycache__/util.cpython-311.pyc' in b.zip expands more than 200 times when unpacked; "
        "it looks like a zip bomb."
    )


def test_it_counts_ignored_bytes_in_the_unpacked_budget(monkeypatch):
    monkeypatch.setattr(engine, "MAX_UNPACKED_BYTES", 1024 * 1024)
    data = make_zip(("locustfile.py", LOCUSTFILE), ("__MACOSX/._a", os.urandom(600 * 1024)),
                    (".DS_Store", os.urandom(600 * 1024)))

    assert rejection("b.zip", data).message.startswith("b.zip unpacks to 1.2 MB")


def test_it_counts_ignored_bytes_in_the_running_budget_too(monkeypatch):
    monkeypatch.setattr(engine, "_declared_size", lambda members: 0)
    monkeypatch.setattr(engine, "MAX_UNPACKED_BYTES", 1024 * 1024)
    data = make_zip(("locustfile.py", LOCUSTFILE), ("__MACOSX/._a", os.urandom(600 * 1024)),
                    ("old.pyc", os.urandom(600 * 1024)))

    assert rejection("b.zip", data).message == (
        "b.zip unpacks to more than 1 MB (the limit was reached while reading 'old.pyc')."
    )


def test_it_refuses_more_entries_than_the_limit_ignored_ones_and_folders_included():
    members = [("locustfile.py", LOCUSTFILE)] + [(f"__MACOSX/{n}", b"") for n in range(engine.MAX_ENTRIES)]

    assert rejection("b.zip", make_zip(*members)).message == (
        f"b.zip has {engine.MAX_ENTRIES + 1:,} entries (files, folders and ignored files such as __MACOSX); "
        f"a bundle may have at most {engine.MAX_ENTRIES:,}."
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("__MACOSX/../../evil", "'__MACOSX/../../evil' contains '..'; bundle paths must stay inside the bundle."),
        ("../x.pyc", "'../x.pyc' contains '..'; bundle paths must stay inside the bundle."),
        ("/tmp/__pycache__/x.pyc",
         "'/tmp/__pycache__/x.pyc' is an absolute path; bundle paths must be relative to the bundle root."),
        ("C:/.DS_Store", "'C:/.DS_Store' is an absolute path; bundle paths must be relative to the bundle root."),
        ("lib\\.DS_Store",
         "'lib\\.DS_Store' uses backslashes in its path; re-create the zip with a tool that writes '/' separators."),
    ],
)
def test_it_refuses_ignored_members_whose_names_escape_the_bundle(name, message):
    error = rejection("b.zip", make_zip(("locustfile.py", LOCUSTFILE), (name, b"\x00")))

    assert (error.message, error.path) == (message, name)


def test_it_refuses_an_ignored_member_that_is_a_symlink():
    data = make_zip(("locustfile.py", LOCUSTFILE), (special_file("__MACOSX/._link", stat.S_IFLNK), b"/etc/passwd"))

    assert rejection("b.zip", data).message == (
        "'__MACOSX/._link' in b.zip is a symbolic link; bundles may only contain regular files."
    )


def test_it_refuses_an_encrypted_ignored_member():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("__MACOSX/._locustfile.py", b"\x00\x05\x16\x07"))
    data = set_member_flags(data, "__MACOSX/._locustfile.py", 0x1)

    error = rejection("b.zip", data)

    assert error.message == "'__MACOSX/._locustfile.py' in b.zip is encrypted; upload a zip without a password."
    assert error.path == "__MACOSX/._locustfile.py"


def test_it_refuses_a_damaged_ignored_member():
    data = bytearray(make_zip(("old.pyc", b"\xa7\r\r\n" * 8), ("locustfile.py", LOCUSTFILE),
                              compression=zipfile.ZIP_STORED))
    data[30 + len("old.pyc") + 5] ^= 0xFF

    assert rejection("b.zip", bytes(data)).message == "'old.pyc' in b.zip is damaged and cannot be unpacked."


def test_it_refuses_names_that_differ_only_in_case_when_one_of_them_is_ignored():
    data = make_zip(("locustfile.py", LOCUSTFILE), (".DS_Store", b"\x00"), (".ds_store", b"x"))

    assert rejection("b.zip", data).message == "'.ds_store' appears more than once in b.zip."


def test_it_refuses_an_ignored_file_that_is_also_a_folder():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("__MACOSX", b"x"), ("__MACOSX/._locustfile.py", b""))

    assert rejection("b.zip", data).message == "'__MACOSX' in b.zip is both a file and a folder."


def test_it_refuses_a_file_that_a_folder_entry_also_names():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("lib/", b""), ("lib", b"x"))

    assert rejection("b.zip", data).message == "'lib' in b.zip is both a file and a folder."


@pytest.mark.parametrize(
    "name", ["fast.so", "lib/_speedups.cpython-311-x86_64-linux-gnu.so", "win/native.pyd", "mac/libx.dylib", "X.SO"]
)
def test_it_refuses_compiled_modules_it_cannot_show(name):
    error = rejection("b.zip", make_zip(("locustfile.py", LOCUSTFILE), (name, b"\x7fELF")))

    assert error.message == (
        f"'{name}' in b.zip is a compiled module; Swarmdeck runs only source it can show "
        "(install packages with native code on the load workers instead)."
    )
    assert error.path == name


# --- what is stored is exactly what is shown ---


def test_it_keeps_a_clean_zip_byte_for_byte():
    data = make_zip(("locustfile.py", LOCUSTFILE), ("lib/", b""), ("lib/util.py", b"X = 1\n"))

    assert read_upload("b.zip", data).content == data


def test_it_keeps_a_py_upload_byte_for_byte():
    data = b"\xef\xbb\xbf" + LOCUSTFILE

    assert read_upload("load.py", data).content == data


def test_it_never_stores_ignored_members_and_still_names_them():
    data = make_zip(
        ("locustfile.py", LOCUSTFILE),
        ("util.pyc", b"\xa7\r\r\n\x00"),
        ("lib/__pycache__/util.cpython-311.pyc", b"\xa7\r\r\n\x00"),
        ("lib/util.py", b"X = 1\n"),
        ("__MACOSX/._locustfile.py", b"\x00\x05\x16\x07"),
        (".DS_Store", b"\x00\x00\x00\x01Bud1"),
    )

    bundle = read_upload("b.zip", data)

    assert stored_names(bundle) == ["lib/util.py", "locustfile.py"]
    assert bundle.ignored == (
        "util.pyc", "lib/__pycache__/util.cpython-311.pyc", "__MACOSX/._locustfile.py", ".DS_Store",
    )
    assert open_stored("zip", bundle.content).files == {"lib/util.py": b"X = 1\n", "locustfile.py": LOCUSTFILE}


def test_it_stores_a_wrapped_folder_at_the_root():
    data = make_zip(("proj/", b""), ("proj/locustfile.py", LOCUSTFILE), ("proj/lib/util.py", b"X = 1\n"))

    assert stored_names(read_upload("proj.zip", data)) == ["lib/util.py", "locustfile.py"]


def test_it_repacks_the_same_files_into_the_same_bytes_whatever_their_order_time_and_litter():
    first = zipfile.ZipInfo("proj/locustfile.py", date_time=(2024, 5, 1, 12, 0, 0))
    second = zipfile.ZipInfo("proj/locustfile.py", date_time=(2025, 1, 2, 3, 4, 6))
    one = make_zip((first, LOCUSTFILE), ("proj/data.csv", b"a\n"), ("__MACOSX/._x", b"1"))
    two = make_zip(("proj/data.csv", b"a\n"), (".DS_Store", b"2"), (second, LOCUSTFILE),
                   compression=zipfile.ZIP_STORED)

    stored = read_upload("one.zip", one).content

    assert stored == read_upload("two.zip", two).content
    with zipfile.ZipFile(io.BytesIO(stored)) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == ["data.csv", "locustfile.py"]
    assert {(info.date_time, info.compress_type) for info in infos} == {((1980, 1, 1, 0, 0, 0), zipfile.ZIP_DEFLATED)}
    assert read_upload("again.zip", stored).content == stored


def test_it_stores_a_repacked_bundle_that_opens_again_even_when_a_file_deflates_very_well():
    # Uploaded uncompressed, so not a bomb; deflating it alone would look like one, so it is repacked stored.
    data = make_zip(("locustfile.py", LOCUSTFILE), ("zeros.csv", bytes(2 * 1024 * 1024)), ("old.pyc", b"x"),
                    compression=zipfile.ZIP_STORED)

    bundle = read_upload("b.zip", data)

    assert open_stored("zip", bundle.content).files["zeros.csv"] == bytes(2 * 1024 * 1024)
