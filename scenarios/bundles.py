"""Turn an uploaded locustfile or zip bundle into a validated, in-memory Bundle.

Uploads come from users over the web, so nothing here trusts the archive:
names are checked before anything is read, sizes are enforced on the bytes
actually decompressed, and nothing is ever written to disk or executed.
Python syntax is not checked here; that is the job of scenarios.analysis.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass

MAX_PY_BYTES = 1 * 1024 * 1024
MAX_ZIP_BYTES = 10 * 1024 * 1024
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_FILES = 200
ENTRY_POINT = "locustfile.py"

# A member that expands more than this many times *and* to more than
# BOMB_MIN_BYTES is a zip bomb, not test data: even highly repetitive CSVs
# stay well below it.
BOMB_RATIO = 200
BOMB_MIN_BYTES = 1024 * 1024

_CHUNK = 64 * 1024
_MB = 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


class BundleError(Exception):
    """A rejected upload. `message` is shown to the user as is; `path` names the offending member, if any."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Bundle:
    """A validated upload, ready to be analysed, stored or handed to a worker."""

    kind: str
    files: dict[str, bytes]
    sources: dict[str, str]
    ignored: tuple[str, ...] = ()

    @property
    def total_size(self) -> int:
        return sum(len(content) for content in self.files.values())


def read_upload(filename: str, data: bytes) -> Bundle:
    """Validate a freshly uploaded file; the extension of `filename` decides how it is read."""
    name = _display_name(filename)
    lowered = name.lower()
    if lowered.endswith(".py"):
        return _read_py(name, data)
    if lowered.endswith(".zip"):
        return _read_zip(name, data)
    raise BundleError(f"Upload a .py locustfile or a .zip bundle; '{name}' is neither.")


def open_stored(kind: str, data: bytes) -> Bundle:
    """Re-open a blob accepted earlier by read_upload.

    It goes through the same checks again so that a limit tightened since the
    upload, or a blob damaged in storage, is caught rather than trusted.
    """
    if kind == "py":
        return _read_py(ENTRY_POINT, data)
    if kind == "zip":
        return _read_zip("bundle.zip", data)
    raise ValueError(f"Unknown bundle kind {kind!r}; expected 'py' or 'zip'.")


def _display_name(filename: str) -> str:
    # Browsers may send a full client-side path ("C:\\fakepath\\x.py"); only the base name means anything to the user.
    base = re.split(r"[\\/]", filename or "")[-1].strip()
    return base or "the uploaded file"


def _size_text(size: int) -> str:
    return f"{size / _MB:.1f} MB ({size:,} bytes)"


def _read_py(name: str, data: bytes) -> Bundle:
    if not data:
        raise BundleError(f"{name} is empty.")
    if len(data) > MAX_PY_BYTES:
        raise BundleError(
            f"{name} is {_size_text(len(data))}; a single locustfile may be at most {MAX_PY_BYTES // _MB} MB."
        )
    text = _decode_python(name, data)
    if not text.strip():
        raise BundleError(f"{name} contains only whitespace; there is no code in it.")
    return Bundle(kind="py", files={ENTRY_POINT: data}, sources={ENTRY_POINT: text}, ignored=())


def _decode_python(name: str, data: bytes) -> str:
    """Decode Python source as UTF-8, the only encoding we promise workers will read it in."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BundleError(f"{name} is saved as UTF-16 — save it as UTF-8.", path=name)
    if b"\x00" in data:
        raise BundleError(f"{name} looks like a binary file, not Python source.", path=name)
    body = data[len(_UTF8_BOM):] if data.startswith(_UTF8_BOM) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line_start = body.rfind(b"\n", 0, start) + 1
        line = body.count(b"\n", 0, start) + 1
        # Everything before the bad byte decoded fine, so counting characters there gives the column an editor shows.
        column = len(body[line_start:start].decode("utf-8")) + 1
        raise BundleError(
            f"{name} is not valid UTF-8 (line {line}, column {column}, byte 0x{body[start]:02x}) — save it as UTF-8.",
            path=name,
        ) from None


def _read_zip(name: str, data: bytes) -> Bundle:
    if not data:
        raise BundleError(f"{name} is empty.")
    if len(data) > MAX_ZIP_BYTES:
        raise BundleError(
            f"{name} is {_size_text(len(data))}; a zip bundle may be at most {MAX_ZIP_BYTES // _MB} MB."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise BundleError(f"{name} is not a valid zip file (it may be damaged or truncated).") from None

    with archive:
        members, ignored = _select_members(name, archive.infolist())
        contents = _read_members(name, archive, members)

    files = _place_at_root(name, contents)
    sources = {path: _decode_python(path, content) for path, content in files.items() if path.endswith(".py")}
    if not sources[ENTRY_POINT].strip():
        raise BundleError(f"{ENTRY_POINT} in {name} is empty; there is no code in it.", path=ENTRY_POINT)
    return Bundle(kind="zip", files=files, sources=sources, ignored=tuple(ignored))


def _select_members(name: str, infos: list[zipfile.ZipInfo]) -> tuple[list[tuple[str, zipfile.ZipInfo]], list[str]]:
    """Check every entry's name and type, and pick the regular files worth reading."""
    members: list[tuple[str, zipfile.ZipInfo]] = []
    ignored: list[str] = []
    seen: dict[str, str] = {}
    folders: set[str] = set()

    for info in infos:
        path = _safe_path(info)
        mode = info.external_attr >> 16
        file_type = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise BundleError(
                f"'{path}' in {name} is a symbolic link; bundles may only contain regular files.", path=path
            )
        if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise BundleError(
                f"'{path}' in {name} is not a regular file; bundles may only contain regular files.", path=path
            )
        if info.is_dir() or stat.S_ISDIR(mode):
            continue
        if _is_ignored(path):
            ignored.append(path)
            continue
        if info.flag_bits & 0x1:
            raise BundleError(f"'{path}' in {name} is encrypted; upload a zip without a password.", path=path)

        # Case-insensitive file systems (macOS, Windows) would merge these on extraction, so treat them as clashes too.
        key = path.casefold()
        if key in seen:
            raise BundleError(f"'{path}' appears more than once in {name}.", path=path)
        seen[key] = path
        parts = path.split("/")
        folders.update("/".join(parts[:i]).casefold() for i in range(1, len(parts)))
        members.append((path, info))

    for key, path in seen.items():
        if key in folders:
            raise BundleError(f"'{path}' in {name} is both a file and a folder.", path=path)
    if len(members) > MAX_FILES:
        raise BundleError(f"{name} contains {len(members)} files; a bundle may contain at most {MAX_FILES}.")
    declared = _declared_size(members)
    if declared > MAX_UNPACKED_BYTES:
        raise BundleError(
            f"{name} unpacks to {_size_text(declared)}; a bundle may unpack to at most {MAX_UNPACKED_BYTES // _MB} MB."
        )
    return members, ignored


def _declared_size(members: list[tuple[str, zipfile.ZipInfo]]) -> int:
    """What the headers claim the members unpack to: good for failing fast, never trusted on its own."""
    return sum(info.file_size for _, info in members)


def _safe_path(info: zipfile.ZipInfo) -> str:
    """Normalise a member name, refusing anything that could land outside the bundle folder."""
    # zipfile silently cuts names at a NUL byte; orig_filename still has the whole name.
    raw = info.orig_filename
    shown = raw.replace("\x00", "\\0")
    if "\x00" in raw:
        raise BundleError(f"'{shown}' has a NUL byte in its name; rename it.", path=shown)
    if raw.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(raw):
        raise BundleError(f"'{raw}' is an absolute path; bundle paths must be relative to the bundle root.", path=raw)
    if "\\" in raw:
        raise BundleError(
            f"'{raw}' uses backslashes in its path; re-create the zip with a tool that writes '/' separators.", path=raw
        )
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BundleError(f"'{raw}' contains '..'; bundle paths must stay inside the bundle.", path=raw)
    if not parts:
        raise BundleError(f"'{raw}' is not a usable file name; rename it.", path=raw)
    return "/".join(parts)


def _is_ignored(path: str) -> bool:
    """Operating-system and interpreter litter that zipping a folder tends to pick up."""
    parts = path.split("/")
    return (
        parts[0] == "__MACOSX"
        or "__pycache__" in parts
        or parts[-1] == ".DS_Store"
        or parts[-1].lower().endswith(".pyc")
    )


def _read_members(name: str, archive: zipfile.ZipFile, members: list[tuple[str, zipfile.ZipInfo]]) -> dict[str, bytes]:
    """Decompress members under one running budget, so lying size headers cannot slip a zip bomb through."""
    budget = MAX_UNPACKED_BYTES
    contents: dict[str, bytes] = {}
    for path, info in members:
        if _looks_like_bomb(info.file_size, info.compress_size):
            raise _bomb_error(name, path)
        chunks: list[bytes] = []
        size = 0
        try:
            with archive.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    budget -= len(chunk)
                    if budget < 0:
                        raise BundleError(
                            f"{name} unpacks to more than {MAX_UNPACKED_BYTES // _MB} MB "
                            f"(the limit was reached while reading '{path}').",
                            path=path,
                        )
                    if _looks_like_bomb(size, info.compress_size):
                        raise _bomb_error(name, path)
                    chunks.append(chunk)
        except BundleError:
            raise
        except NotImplementedError:
            raise BundleError(
                f"'{path}' in {name} uses a compression method we cannot read; use ordinary (deflate) zip compression.",
                path=path,
            ) from None
        except RuntimeError:
            # zipfile raises RuntimeError for members that need a password.
            raise BundleError(f"'{path}' in {name} is encrypted; upload a zip without a password.", path=path) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError):
            raise BundleError(f"'{path}' in {name} is damaged and cannot be unpacked.", path=path) from None
        contents[path] = b"".join(chunks)
    return contents


def _looks_like_bomb(unpacked: int, packed: int) -> bool:
    return unpacked > BOMB_MIN_BYTES and unpacked > BOMB_RATIO * max(packed, 1)


def _bomb_error(name: str, path: str) -> BundleError:
    return BundleError(
        f"'{path}' in {name} expands more than {BOMB_RATIO} times when unpacked; it looks like a zip bomb.",
        path=path,
    )


def _place_at_root(name: str, contents: dict[str, bytes]) -> dict[str, bytes]:
    """Find locustfile.py at the root, forgiving the single wrapping folder left by zipping a folder."""
    if not contents:
        raise BundleError(f"{name} contains no files.")
    paths = list(contents)
    tops = {path.split("/")[0] for path in paths}
    files = contents
    if len(tops) == 1 and all("/" in path for path in paths):
        prefix = len(next(iter(tops))) + 1
        files = {path[prefix:]: content for path, content in contents.items()}
    if ENTRY_POINT not in files:
        found = sorted(path for path in paths if path.lower().endswith(".py"))
        if found:
            shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
            detail = f"found: {shown}"
        else:
            detail = "it contains no .py files"
        raise BundleError(f"The bundle has no {ENTRY_POINT} at its root ({detail}).", path=ENTRY_POINT)
    return {path: files[path] for path in sorted(files)}
