"""Which hosts a run may send requests to: a project's allowed target patterns, matched. Pure.

Shared by the control center (targets/: checking entries as they are proposed, and a run's host
at start) and the pool (workers/pool_target_guard.py: each request of an HttpUser or FastHttpUser).
It imports neither Django nor locust.

Patterns (written lower-case, as `parse` normalises them):
- an exact host, optionally with a port: ``api.example.com``, ``api.example.com:8443``,
  ``203.0.113.7``, ``[2001:db8::1]:8080``. Without a port, every port of that host.
- a wildcard: ``*.example.com`` (optionally ``:port``) matches every name below example.com, at
  any depth (a.example.com, a.b.example.com), never example.com itself nor an IP address.
- a CIDR range: ``203.0.113.0/24``, ``2001:db8::/32``; it matches IP addresses written in the URL,
  every port. A host *name* is never resolved to match a range (DNS answers change; the check
  must not wait for them): list the name itself.

Loopback (127.0.0.0/8, ::1, ``localhost``) passes without an entry only when `allow_loopback`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_PATTERN = 255
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")

HOST, WILDCARD, CIDR = "host", "wildcard", "cidr"


class PatternError(ValueError):
    """A pattern that is not an exact host, a *.wildcard or a CIDR range; the message says why."""


@dataclass(frozen=True)
class Pattern:
    kind: str                  # HOST, WILDCARD or CIDR
    host: str = ""             # HOST: the name or IP (no brackets); WILDCARD: the suffix after "*."
    port: int | None = None    # None: every port
    network: Network | None = None

    @property
    def text(self) -> str:
        """The normalised pattern, as stored."""
        if self.kind == CIDR:
            return str(self.network)
        host = f"*.{self.host}" if self.kind == WILDCARD else self.host
        if ":" in host:  # an IPv6 address
            host = f"[{host}]" if self.port is not None else host
        return f"{host}:{self.port}" if self.port is not None else host

    def matches(self, host: str, port: int | None) -> bool:
        """`host` as `normalise_host` gives it, `port` the effective one (the scheme's default if unset)."""
        if self.port is not None and port != self.port:
            return False
        if self.kind == CIDR:
            ip = ip_of(host)
            return ip is not None and ip.version == self.network.version and ip in self.network
        if self.kind == WILDCARD:
            return ip_of(host) is None and host.endswith("." + self.host)
        mine, theirs = ip_of(self.host), ip_of(host)
        if mine is not None or theirs is not None:
            return mine == theirs
        return host == self.host


def ip_of(host: str) -> IP | None:
    """The IP address `host` is written as (IPv4-mapped IPv6 as its IPv4 address), or None for a name."""
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def is_loopback(host: str) -> bool:
    host = normalise_host(host)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = ip_of(host)
    return ip is not None and ip.is_loopback


def _check_name(name: str, what: str) -> None:
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise PatternError(f"“{what}” is not a host name: letters, digits and hyphens between dots.")


def _split_port(text: str) -> tuple[str, int | None]:
    """("host", port) from "host", "host:port", "[v6]" or "[v6]:port"; a bare IPv6 address has no port."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise PatternError(f"“{text}” opens a [ without closing it.")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise PatternError(f"“{text}”: only a :port may follow the ] of an IPv6 address.")
        return host, _port(rest[1:], text) if rest else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, _port(port, text)
    return text, None


def _port(text: str, pattern: str) -> int:
    if not _PORT.match(text) or not 1 <= int(text) <= 65535:
        raise PatternError(f"“{pattern}”: the port must be a number from 1 to 65535.")
    return int(text)


def parse(pattern: str) -> Pattern:
    """A proposed entry, checked and normalised; a pasted URL counts as its host and port."""
    text = pattern.strip().lower()
    if not text:
        raise PatternError("Write a host, a *.wildcard or a CIDR range.")
    if len(text) > MAX_PATTERN:
        raise PatternError(f"A pattern has at most {MAX_PATTERN} characters.")
    if "://" in text:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise PatternError(f"“{pattern}” is not a URL with a valid host and port.") from None
        if not parts.hostname:
            raise PatternError(f"“{pattern}” names no host.")
        host = parts.hostname
        text = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise PatternError(f"“{pattern}” is not a CIDR range such as 203.0.113.0/24 or 2001:db8::/32.") from None
        return Pattern(CIDR, network=network)
    host, port = _split_port(text)
    host = host.rstrip(".")
    if host.startswith("*."):
        suffix = host[2:]
        if ip_of(suffix) is not None:
            raise PatternError("A wildcard covers host names; write IP ranges in CIDR form (203.0.113.0/24).")
        _check_name(suffix, host)
        if "." not in suffix:
            raise PatternError(f"“{host}” would allow a whole top-level domain: name a domain, *.example.com.")
        return Pattern(WILDCARD, host=suffix, port=port)
    if "*" in host:
        raise PatternError("A wildcard stands only at the start, before a dot: *.example.com.")
    ip = ip_of(host)
    if ip is not None:
        return Pattern(HOST, host=str(ip), port=port)
    if ":" in host:
        raise PatternError(f"“{text}” is not a host, host:port or [IPv6]:port.")
    _check_name(host, host)
    return Pattern(HOST, host=host, port=port)


def url_host(url: str) -> tuple[str, int | None, str]:
    """(host, effective port, what to call it: host[:port] as written) of an http(s) URL.
    Raises ValueError for a URL without a host."""
    parts = urlsplit(url)
    host = normalise_host(parts.hostname or "")
    if not host:
        raise ValueError(f"{url!r} names no host")
    port = parts.port
    shown = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return host, port or DEFAULT_PORTS.get(parts.scheme.lower()), shown


def origin_key(url: str) -> str:
    """A prefix of `url` that holds all of its scheme and host part (urlsplit's scheme and netloc): up to the
    first "/", "?" or "#" after its first "://", or all of it. Two URLs with the same key have the same host,
    port and scheme, so a decision made for one holds for the other. Cheaper than urlsplit."""
    start = url.find("://")
    if start < 0:
        return url
    end = len(url)
    for delimiter in "/?#":
        at = url.find(delimiter, start + 3, end)
        if at >= 0:
            end = at
    return url[:end]


MAX_CACHED_ORIGINS = 1024   # per run and process: a locustfile's distinct scheme://host[:port] seen


class Rules:
    """A project's approved patterns and the loopback allowance, ready to answer per request."""

    def __init__(self, patterns: list[str], allow_loopback: bool = False):
        self.patterns = [parse(pattern) for pattern in patterns]
        self.allow_loopback = allow_loopback
        # refusal() runs once per request of the pool (8,000 a second and more): parsing each URL again
        # cost 6 µs, 5 % of a core. Decisions by origin_key, bounded; a miss parses as before.
        self._decided: dict[str, str | None] = {}

    def allows(self, host: str, port: int | None) -> bool:
        host = normalise_host(host)
        if self.allow_loopback and is_loopback(host):
            return True
        return any(pattern.matches(host, port) for pattern in self.patterns)

    def refusal(self, url: str) -> str | None:
        """None when `url` may be requested; else the host to name ("api.example.com:8443")."""
        key = origin_key(url)
        try:
            return self._decided[key]
        except KeyError:
            pass
        decision = self._refusal(url)
        if len(self._decided) >= MAX_CACHED_ORIGINS:
            self._decided.clear()
        self._decided[key] = decision
        return decision

    def _refusal(self, url: str) -> str | None:
        try:
            host, port, shown = url_host(url)
        except ValueError:
            return None  # not ours to judge: the HTTP client refuses a URL without a host
        return None if self.allows(host, port) else shown
