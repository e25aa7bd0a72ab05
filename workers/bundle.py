"""Read, validate and extract a locustfile or zip bundle: one set of rules for the upload and the worker.

The web app calls read_upload on what a user sends and stores `Bundle.content`; a load worker
calls extract on what it receives. Both go through the same checks with the same budget, so a
zip that never went through an upload (or was damaged on the way) is caught on the worker too.

Nothing here trusts the archive: every entry's name and type are checked before anything is
read, ignored litter (__MACOSX, __pycache__, .DS_Store, .pyc) included; sizes are enforced on
the bytes actually decompressed; only then is the litter dropped. Nothing is executed.
Python syntax is not checked here; that is the job of scenarios.analysis.

Pure standard library: load workers import this with nothing but Redis (no Django, no locust).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MAX_PY_BYTES = 1 * 1024 * 1024
MAX_ZIP_BYTES = 10 * 1024 * 1024
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_FILES = 200
# Every entry of the zip, folders and ignored litter included: a macOS zip of MAX_FILES files
# has about twice as many entries, and nothing may come in unbounded numbers.
MAX_ENTRIES = 1000
ENTRY_POINT = "locustfile.py"
STORED_NAME = "bundle.zip"  # how a stored or received bundle is named in messages

# A member that expands more than this many times *and* to more than
# BOMB_MIN_BYTES is a zip bomb, not test data: even highly repetitive CSVs
# stay well below it.
BOMB_RATIO = 200
BOMB_MIN_BYTES = 1024 * 1024

# Native modules Python could import (or load) but the UI cannot show.
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")

_CHUNK = 64 * 1024
_MB = 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_PACKED_TIME = (1980, 1, 1, 0, 0, 0)
_PACK_LEVEL = 9
_DAMAGED = "The locustfile bundle arrived damaged (its sha256 does not match the stored version)."


# Packages a locustfile needs, pip's format, at the bundle's root: installed per slot (workers.venvs).
REQUIREMENTS = "requirements.txt"


class BundleError(Exception):
    """A rejected bundle. `message` is shown to the user as is; `path` names the offending member, if any."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Bundle:
    """A validated bundle, ready to be analysed, stored or extracted.

    `files` are the accepted files at their place under the bundle root; `ignored` names the
    litter that was checked and dropped. `content` is the blob to store: the upload itself
    when it holds exactly `files`, otherwise a deterministic re-pack of `files` alone.
    """

    kind: str
    files: dict[str, bytes]
    sources: dict[str, str]
    ignored: tuple[str, ...] = ()
    content: bytes = field(default=b"", compare=False, repr=False)

    @property
    def total_size(self) -> int:
        return sum(len(content) for content in self.files.values())


@dataclass(frozen=True)
class _Member:
    path: str
    info: zipfile.ZipInfo
    ignored: bool


def read_upload(filename: str, data: bytes) -> Bundle:
    """Validate a freshly uploaded file; the extension of `filename` decides how it is read."""
    name = _display_name(filename)
    lowered = name.lower()
    if lowered.endswith(".py"):
        return _read_py(name, data)
    if lowered.endswith(".zip"):
        return _read_zip(name, data, normalize=True)
    raise BundleError(f"Upload a .py locustfile or a .zip bundle; '{name}' is neither.")


def open_stored(kind: str, data: bytes) -> Bundle:
    """Re-open a blob accepted earlier by read_upload (its `content`).

    It goes through the same checks again so that a limit tightened since the
    upload, or a blob damaged in storage, is caught rather than trusted.
    Raises ValueError for an unknown kind, BundleError for a blob that fails a check.
    """
    if kind == "py":
        return _read_py(ENTRY_POINT, data)
    if kind == "zip":
        return _read_zip(STORED_NAME, data, normalize=False)
    raise ValueError(f"Unknown bundle kind {kind!r}; expected 'py' or 'zip'.")


def check_sha256(data: bytes, expected: str) -> None:
    """Raise BundleError unless `data` hashes to `expected` (hex, any case)."""
    if hashlib.sha256(data).hexdigest() != (expected or "").strip().lower():
        raise BundleError(_DAMAGED)


def extract(kind: str, data: bytes, directory: Path | str, *, sha256: str | None = None) -> Path:
    """Validate `data` like an upload and write only its accepted files under `directory`.

    `kind` is the stored version's kind ('py' or 'zip'); with `sha256`, the blob must hash to it.
    Everything is validated before the first byte is written. Files are placed at the root (a
    wrapping folder is stripped), created fresh (O_CREAT|O_EXCL|O_NOFOLLOW), never through a
    link, never outside `directory`, which is created if missing.

    Returns the resolved directory, which holds locustfile.py. Raises BundleError, with a
    message fit for the user, on any problem (an unknown kind included).
    """
    if sha256 is not None:
        check_sha256(data, sha256)
    if kind not in ("py", "zip"):
        raise BundleError(f"Unknown bundle kind {kind!r}; expected 'py' or 'zip'.")
    bundle = open_stored(kind, data)
    root = Path(directory)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BundleError(f"The bundle cannot be unpacked into {root} ({error.strerror}).") from None
    root = root.resolve()
    for path, content in bundle.files.items():
        _write_file(root, path, content)
    return root


def pack(files: dict[str, bytes]) -> bytes:
    """A deterministic zip of `files` (path -> bytes): sorted names, fixed times and modes, deflate.

    A file that deflated alone would pass for a zip bomb is stored uncompressed instead, so
    the result always re-opens under the same rules.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(files):
            content = files[path]
            info = zipfile.ZipInfo(path, date_time=_PACKED_TIME)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            method = zipfile.ZIP_DEFLATED
            if len(content) > BOMB_MIN_BYTES and _looks_like_bomb(len(content), _deflated_size(content)):
                method = zipfile.ZIP_STORED
            archive.writestr(info, content, compress_type=method, compresslevel=_PACK_LEVEL)
    return buffer.getvalue()


def _deflated_size(content: bytes) -> int:
    compressor = zlib.compressobj(_PACK_LEVEL, zlib.DEFLATED, -15)  # what zipfile writes for ZIP_DEFLATED
    return len(compressor.compress(content)) + len(compressor.flush())


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
    return Bundle(kind="py", files={ENTRY_POINT: data}, sources={ENTRY_POINT: text}, ignored=(), content=data)


def _decode_python(name: str, data: bytes) -> str:
    """Decode Python source as UTF-8, the only encoding we promise workers will read it in."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BundleError(f"{name} is saved as UTF-16 — save it as UTF-8.", path=name)
    if b"\x00" in data:
        raise BundleError(f"{name} looks like a binary file, not Python source.", path=name)
    body = data.removeprefix(_UTF8_BOM)
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


def _read_zip(name: str, data: bytes, *, normalize: bool) -> Bundle:
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
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise BundleError(
                f"{name} has {len(infos):,} entries (files, folders and ignored files such as __MACOSX); "
                f"a bundle may have at most {MAX_ENTRIES:,}."
            )
        members = _check_members(name, infos)
        contents = _read_members(name, archive, members)
        commented = bool(archive.comment)

    files = _place_at_root(name, contents)
    sources = {path: _decode_python(path, content) for path, content in files.items() if path.endswith(".py")}
    if not sources[ENTRY_POINT].strip():
        raise BundleError(f"{ENTRY_POINT} in {name} is empty; there is no code in it.", path=ENTRY_POINT)
    if REQUIREMENTS in files:
        sources[REQUIREMENTS] = _requirements_text(name, files[REQUIREMENTS])
    ignored = tuple(member.path for member in members if member.ignored)
    content = data
    if normalize and (commented or not _holds_exactly(infos, files)):
        content = _repack(name, files)
    return Bundle(kind="zip", files=files, sources=sources, ignored=ignored, content=content)


def _requirements_text(name: str, data: bytes) -> str:
    """requirements.txt at the bundle's root, checked by the same rules as on the worker."""
    from workers import requirements  # packaging: only bundles that have one pay for it

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BundleError(f"{REQUIREMENTS} in {name} is not UTF-8 text.", path=REQUIREMENTS) from None
    try:
        requirements.parse(text)
    except requirements.RequirementsRefused as refused:
        raise BundleError(str(refused), path=REQUIREMENTS) from None
    return text


def _check_members(name: str, infos: list[zipfile.ZipInfo]) -> list[_Member]:
    """Check every entry's name and type, ignored ones included; list the regular files, marking the litter."""
    members: list[_Member] = []
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
        parts = path.split("/")
        if info.is_dir() or stat.S_ISDIR(mode):
            folders.update("/".join(parts[:i]).casefold() for i in range(1, len(parts) + 1))
            continue
        if info.flag_bits & 0x1:
            raise BundleError(f"'{path}' in {name} is encrypted; upload a zip without a password.", path=path)

        # Case-insensitive file systems (macOS, Windows) would merge these on extraction, so treat them as clashes too.
        key = path.casefold()
        if key in seen:
            raise BundleError(f"'{path}' appears more than once in {name}.", path=path)
        seen[key] = path
        folders.update("/".join(parts[:i]).casefold() for i in range(1, len(parts)))
        ignored = _is_ignored(path)
        if not ignored and parts[-1].lower().endswith(COMPILED_SUFFIXES):
            raise BundleError(
                f"'{path}' in {name} is a compiled module; Swarmdeck runs only source it can show "
                "(install packages with native code on the load workers instead).",
                path=path,
            )
        members.append(_Member(path, info, ignored))

    for key, path in seen.items():
        if key in folders:
            raise BundleError(f"'{path}' in {name} is both a file and a folder.", path=path)
    accepted = sum(1 for member in members if not member.ignored)
    if accepted > MAX_FILES:
        raise BundleError(f"{name} contains {accepted} files; a bundle may contain at most {MAX_FILES}.")
    declared = _declared_size(members)
    if declared > MAX_UNPACKED_BYTES:
        raise BundleError(
            f"{name} unpacks to {_size_text(declared)}; a bundle may unpack to at most {MAX_UNPACKED_BYTES // _MB} MB."
        )
    return members


def _declared_size(members: list[_Member]) -> int:
    """What the headers claim every file unpacks to, litter included: good for failing fast, never trusted alone."""
    return sum(member.info.file_size for member in members)


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


def _read_members(name: str, archive: zipfile.ZipFile, members: list[_Member]) -> dict[str, bytes]:
    """Decompress every file under one running budget, so lying size headers cannot slip a zip bomb through.

    Ignored members are read (and counted) too, then dropped: only accepted files are returned.
    """
    budget = MAX_UNPACKED_BYTES
    contents: dict[str, bytes] = {}
    for member in members:
        path, info = member.path, member.info
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
                    if not member.ignored:
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
        if not member.ignored:
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


def _holds_exactly(infos: list[zipfile.ZipInfo], files: dict[str, bytes]) -> bool:
    """Whether the zip's entries are `files` under their final names, plus at most their parent folders."""
    parents = {"/".join(path.split("/")[:i]) for path in files for i in range(1, path.count("/") + 1)}
    names: set[str] = set()
    for info in infos:
        raw = info.orig_filename
        if info.is_dir() or stat.S_ISDIR(info.external_attr >> 16):
            if raw.rstrip("/") not in parents:
                return False
        elif raw not in files:
            return False
        else:
            names.add(raw)
    return len(names) == len(files)


def _repack(name: str, files: dict[str, bytes]) -> bytes:
    """Store only the accepted files, and make sure what is stored re-opens to exactly them."""
    packed = pack(files)
    if len(packed) > MAX_ZIP_BYTES:
        raise BundleError(
            f"{name} without its ignored files packs to {_size_text(len(packed))} with ordinary (deflate) "
            f"compression; a zip bundle may be at most {MAX_ZIP_BYTES // _MB} MB."
        )
    if _read_zip(name, packed, normalize=False).files != files:  # pragma: no cover - a bug, not a user error
        raise AssertionError("a re-packed bundle does not re-open to the files it was made of")
    return packed


def _write_file(root: Path, path: str, content: bytes) -> None:
    """Create root/path, refusing to follow any link or to leave root on the way."""
    parts = path.split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts) or path.startswith("/"):
        raise BundleError(f"'{path}' is not a safe path inside the bundle.", path=path)
    if not root.joinpath(*parts).resolve().is_relative_to(root):
        raise BundleError(f"'{path}' would be written outside the bundle folder.", path=path)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    folder = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=folder)
            except FileExistsError:
                pass
            inner = os.open(part, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow, dir_fd=folder)
            os.close(folder)
            folder = inner
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow | getattr(os, "O_CLOEXEC", 0)
        handle = os.open(parts[-1], flags, 0o644, dir_fd=folder)
        with os.fdopen(handle, "wb") as out:
            out.write(content)
    except OSError as error:
        raise BundleError(
            f"'{path}' could not be written where the bundle is unpacked ({error.strerror or error}).", path=path
        ) from None
    finally:
        os.close(folder)
