"""Inside the pool: HttpUser and FastHttpUser clients refuse hosts outside the project's allow list.

This guards against *mistakes*, not against malicious code: an absolute URL to another host in
`self.client.get(...)`, a forgotten staging host in a user class, a redirect to elsewhere. A
refused request fails at once with "host not allowed for this project: <host>", without any
connection, and counts as a failed request in Locust's statistics (the request event fires with
the exception, as for a refused connection). A locustfile that wants to reach another host can
open its own socket; the sandbox (workers/sandbox.py) is what confines user code, not this.

Where it hooks in, so redirects are checked too:
- requests (HttpSession): `HttpSession.send`, which requests calls for the first request and for
  every redirect it follows; the error is a requests ConnectionError, which Locust's safe mode
  turns into a failed response.
- geventhttpclient (FastHttpSession): `LocustUserAgent._urlopen`, called per attempt and per
  redirect; the error is a ConnectionError (not retried), a failure for FastHttpSession too.

Imports locust, so it is a pool* module (tests/test_invariants.py).
"""

from __future__ import annotations

import logging

import requests

from workers.target_rules import Rules

log = logging.getLogger("swarmdeck.pool")

MESSAGE = "host not allowed for this project: {host}"


class HostNotAllowed(ConnectionError):
    """A request to a host outside the allow list: a failure, never retried, to geventhttpclient."""

    def __str__(self):
        return str(self.args[0]) if self.args else "host not allowed for this project"


class RequestsHostNotAllowed(HostNotAllowed, requests.exceptions.ConnectionError):
    """The same for requests (a RequestException). FastHttpSession takes an error with a `response`
    attribute for an HTTP answer, so geventhttpclient gets the plain one."""

    def __init__(self, *args, **kwargs):
        requests.exceptions.ConnectionError.__init__(self, *args, **kwargs)


RequestsHostNotAllowed.__name__ = RequestsHostNotAllowed.__qualname__ = "HostNotAllowed"  # as the stats show it


class Guard:
    """The run's rules, and which refused hosts were logged (each once: the failures count the rest)."""

    def __init__(self, rules: Rules):
        self.rules = rules
        self.logged: set[str] = set()

    def check(self, url: str, request=None, error_class: type[HostNotAllowed] = HostNotAllowed) -> None:
        host = self.rules.refusal(str(url))
        if host is None:
            return
        if host not in self.logged and len(self.logged) < 20:
            self.logged.add(host)
            log.warning("A request to %s was refused: %s is not on this project's allowed targets (propose it on "
                        "the project's Allowed targets page; an admin approves it). Such requests fail without "
                        "being sent.", url, host)
        if request is not None:
            raise error_class(MESSAGE.format(host=host), request=request)
        raise error_class(MESSAGE.format(host=host))


_installed: Guard | None = None


def install(targets: dict | None) -> Guard | None:
    """Patch both clients for this process with the assignment's `targets` ({patterns, loopback});
    None (enforcement off on this Swarmdeck) patches nothing."""
    global _installed
    if targets is None:
        return None
    guard = Guard(Rules(list(targets.get("patterns") or []), bool(targets.get("loopback"))))
    if _installed is None:
        _patch()
    _installed = guard
    return guard


def _patch() -> None:
    from locust.clients import HttpSession
    from locust.contrib.fasthttp import LocustUserAgent

    send = HttpSession.send
    urlopen = LocustUserAgent._urlopen

    def guarded_send(self, request, **kwargs):
        _installed.check(request.url, request, RequestsHostNotAllowed)
        return send(self, request, **kwargs)

    def guarded_urlopen(self, request):
        _installed.check(request.url)
        return urlopen(self, request)

    HttpSession.send = guarded_send
    LocustUserAgent._urlopen = guarded_urlopen
