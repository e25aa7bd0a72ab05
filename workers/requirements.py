"""A bundle's requirements.txt: what may be installed for a locustfile, checked without pip.

Only plain requirements from the worker's configured index (`PIP_INDEX_URL` / pip config) are
allowed: no pip options (`-e`, `-r`, `--index-url`, `--find-links`, ...), no URLs or direct
references, no local paths. A requirement naming a package of Swarmdeck's own environment must
accept the installed version: locust, gevent and their dependencies stay the pinned ones.
Used by the upload analysis (a clear refusal at upload) and by the worker (again, before pip).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import sys
from dataclasses import dataclass
from functools import lru_cache

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

MAX_BYTES = 64 * 1024
MAX_LINES = 500
_PATHLIKE = re.compile(r"^[.~/\\]|[/\\]|\.(whl|zip|tar\.gz|tgz|tar\.bz2)$", re.IGNORECASE)


class RequirementsRefused(ValueError):
    """requirements.txt holds something a worker will not install; the message says where and why."""


@dataclass(frozen=True)
class Requirements:
    lines: tuple[str, ...]  # the requirements as pip gets them, one per line, comments dropped

    @property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)

    @property
    def digest(self) -> str:
        """Names one environment: these requirements on this Python with these base packages."""
        key = "\n".join([*sorted(self.lines), sys.version, *base_pins()])
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    def __bool__(self) -> bool:
        return bool(self.lines)


@lru_cache(maxsize=1)
def base_distributions() -> dict[str, str]:
    """Swarmdeck's own environment: canonical name -> installed version."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist.version)
    return found


def base_pins() -> list[str]:
    """Constraints that keep every base package at its installed version while pip resolves."""
    return sorted(f"{name}=={version}" for name, version in base_distributions().items())


def _strip(line: str) -> str:
    # pip's comment rule: '#' at the start, or after whitespace.
    return re.sub(r"(^|\s)#.*$", "", line).strip()


def parse(text: str) -> Requirements:
    """Check requirements.txt; raise RequirementsRefused naming the first bad line."""
    if len(text.encode()) > MAX_BYTES:
        raise RequirementsRefused(f"requirements.txt is larger than {MAX_BYTES // 1024} KiB.")
    raw = text.splitlines()
    if len(raw) > MAX_LINES:
        raise RequirementsRefused(f"requirements.txt has more than {MAX_LINES} lines.")
    kept: list[str] = []
    for number, original in enumerate(raw, start=1):
        line = _strip(original)
        if not line:
            continue
        where = f"requirements.txt line {number} ({line!r})"
        if line.endswith("\\"):
            raise RequirementsRefused(f"{where}: line continuations are not supported; put each requirement on "
                                      "one line.")
        if line.startswith("-"):
            raise RequirementsRefused(f"{where}: pip options (-e, -r, -c, --index-url, --find-links, ...) are not "
                                      "allowed; packages come from the worker's configured index.")
        if "://" in line or re.search(r"\s@\s|^\S+@", line):
            raise RequirementsRefused(f"{where}: URLs and direct references are not allowed; name a package "
                                      "from the index, e.g. 'pyquery==2.0.1'.")
        if _PATHLIKE.search(line.split(";")[0]):
            raise RequirementsRefused(f"{where}: local paths and archives are not allowed; name a package from "
                                      "the index.")
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise RequirementsRefused(f"{where}: not a requirement ({error}).") from None
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        _check_base(where, requirement)
        kept.append(str(requirement))
    return Requirements(tuple(kept))


def _check_base(where: str, requirement: Requirement) -> None:
    installed = base_distributions().get(canonicalize_name(requirement.name))
    if installed is None:
        return
    if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
        raise RequirementsRefused(
            f"{where} would replace Swarmdeck's {requirement.name} {installed}, which the load engine runs on; "
            f"remove the line or accept {installed}.")
