"""Outgoing HTTP for webhooks that cannot be pointed at internal addresses (SSRF guard).

The rule is applied where it cannot be dodged: when the connection is made. The host name is
resolved here (socket.getaddrinfo), every address it resolves to is checked, and the socket is
connected to one of those checked addresses, so a name that changes its answer between a check
and the connection (DNS rebinding) gains nothing. The request itself keeps the URL's host name:
the Host header, and for https the certificate check and SNI, are for the name as typed.

Refused unless the admin setting SWARMDECK_WEBHOOK_ALLOW_PRIVATE is on: loopback, private,
link-local (with the cloud metadata service), shared (carrier-grade NAT), multicast, reserved,
unspecified and any other non-global address, also when it hides inside an IPv6 address
(IPv4-mapped, IPv4-compatible, NAT64, 6to4). Environment proxies are never used (a proxy would
connect on our behalf, past the check) and redirects are not followed.

Errors come back as sentences for the people who set up the webhook, never as errno text.
"""

import errno
import http.client
import ipaddress
import logging
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

log = logging.getLogger(__name__)

ALLOW_SETTING = "SWARMDECK_WEBHOOK_ALLOW_PRIVATE"
EXPLANATION = (f"Swarmdeck does not send webhooks to internal addresses (an admin can allow it with "
               f"{ALLOW_SETTING}=1).")

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598: not private, not global either
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def private_allowed() -> bool:
    """The admin setting, read at call time (tests override it)."""
    return bool(getattr(settings, ALLOW_SETTING, False))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IP) -> str | None:
    """None for a public address; otherwise what it is, e.g. "a loopback address"."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%")[0])
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            problem = address_problem(embedded)
            if problem or ip.ipv4_mapped:
                return problem  # an IPv4-mapped address is its IPv4 address
            if ip in IPV4_COMPATIBLE:
                return "a reserved address"
    suffix = " (the cloud metadata service)" if ip in METADATA else ""
    if ip.is_unspecified:
        kind = "an unspecified"
    elif ip.is_loopback:
        kind = "a loopback"
    elif ip.is_link_local:
        kind = "a link-local"
    elif ip.is_multicast:
        kind = "a multicast"
    elif isinstance(ip, ipaddress.IPv4Address) and ip in SHARED:
        kind = "a shared (carrier-grade NAT)"
    elif isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        kind = "a site-local"
    elif ip.is_private:
        kind = "a private"
    elif ip.is_reserved:
        kind = "a reserved"
    elif not ip.is_global:
        kind = "a non-public"
    else:
        return None
    return f"{kind} address{suffix}"


def _literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def _subject(host: str, ip: IP, problem: str) -> str:
    """"127.0.0.1 is a loopback address" or "hooks.example resolves to 10.0.0.5, a private address"."""
    if _literal(host) is not None:
        return f"{host.strip('[]')} is {problem}"
    return f"{host} resolves to {ip}, {problem}"


class Refused(OSError):
    """The host is, or resolves to, an address webhooks may not reach."""

    def __init__(self, host: str, ip: IP, problem: str):
        super().__init__(f"Refused: {_subject(host, ip, problem)}; {EXPLANATION}")
        self.host, self.ip, self.problem = host, ip, problem

    def __str__(self):
        return self.args[0]


class Unresolvable(OSError):
    def __init__(self, host: str):
        super().__init__(f"Could not resolve the host name {host}.")
        self.host = host

    def __str__(self):
        return self.args[0]


def resolve(host: str, port: int | None, allow_private: bool) -> list[tuple]:
    """getaddrinfo answers for a TCP connection, every address checked; raises Refused or Unresolvable."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Unresolvable(host) from error
    answers = [answer for answer in answers if answer[0] in (socket.AF_INET, socket.AF_INET6)]
    if not answers:
        raise Unresolvable(host)
    if not allow_private:
        for answer in answers:
            ip = ipaddress.ip_address(answer[4][0].split("%")[0])
            problem = address_problem(ip)
            if problem:
                raise Refused(host, ip, problem)
    return answers


def connect(host: str, port: int, timeout, allow_private: bool) -> socket.socket:
    """A TCP socket connected to a checked address of host (the first that answers)."""
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in resolve(host, port, allow_private):
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            sock.connect(sockaddr)
        except OSError as error:
            sock.close()
            last_error = error
            continue
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        return sock
    raise last_error


def url_problem(url: str) -> str | None:
    """For forms, at save time: why this URL will be refused, or None. A literal internal address,
    or a name whose every address is internal; a name that does not resolve (yet) passes. The
    connection repeats the check on what the name resolves to then, which is what counts."""
    if private_allowed():
        return None
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    ip = _literal(host)
    if ip is not None:
        addresses = [ip]
    else:
        try:
            answers = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None
        addresses = list(dict.fromkeys(ipaddress.ip_address(answer[4][0].split("%")[0]) for answer in answers))
    problems = [(address, address_problem(address)) for address in addresses]
    if not problems or not all(problem for _, problem in problems):
        return None
    text = f"{_subject(host, *problems[0])}; {EXPLANATION}"
    return text[0].upper() + text[1:]


def tls_context() -> ssl.SSLContext:
    """Certificates verified against the system's CAs, for the URL's host name."""
    return ssl.create_default_context()


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, allow_private: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.allow_private = allow_private

    def connect(self):
        if self._tunnel_host:
            raise OSError("webhooks do not go through proxies")
        sys.audit("http.client.connect", self, self.host, self.port)
        self.sock = connect(self.host, self.port, self.timeout, self.allow_private)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, allow_private: bool, context: ssl.SSLContext, **kwargs):
        super().__init__(*args, context=context, **kwargs)
        self.allow_private, self.tls = allow_private, context

    def connect(self):
        if self._tunnel_host:
            raise OSError("webhooks do not go through proxies")
        sys.audit("http.client.connect", self, self.host, self.port)
        sock = connect(self.host, self.port, self.timeout, self.allow_private)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allow_private: bool):
        super().__init__()
        self.allow_private = allow_private

    def http_open(self, req):
        return self.do_open(_CheckedHTTPConnection, req, allow_private=self.allow_private)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allow_private: bool):
        super().__init__()
        self.allow_private = allow_private

    def https_open(self, req):
        return self.do_open(_CheckedHTTPSConnection, req, allow_private=self.allow_private, context=tls_context())


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET without the body (and could point anywhere):
    it counts as a failed attempt, with its status."""

    def redirect_request(self, *args, **kwargs):
        return None


def opener(allow_private: bool) -> urllib.request.OpenerDirector:
    """http and https only, no proxy handler (so no environment proxies), no redirects."""
    director = urllib.request.OpenerDirector()
    for handler in (urllib.request.UnknownHandler(), _HTTPHandler(allow_private), _HTTPSHandler(allow_private),
                    urllib.request.HTTPDefaultErrorHandler(), _NoRedirects(), urllib.request.HTTPErrorProcessor()):
        director.add_handler(handler)
    return director


_CONNECT_WORDS = {
    errno.ECONNREFUSED: "connection refused", errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable", errno.ECONNRESET: "connection reset", errno.ETIMEDOUT: "timed out",
    errno.ECONNABORTED: "connection aborted", errno.EADDRNOTAVAIL: "address not available",
}


def describe(error: BaseException, host: str, timeout: float) -> str:
    """What went wrong, in words for the webhook's owner (the detail goes to the log)."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, (Refused, Unresolvable)):
        return str(reason)
    if isinstance(reason, socket.gaierror):
        return f"Could not resolve the host name {host}."
    if isinstance(reason, TimeoutError):
        return f"Timed out after {timeout:g} s."
    if isinstance(reason, ssl.SSLCertVerificationError):
        detail = (reason.verify_message or "not trusted").rstrip(".")
        return f"The TLS certificate of {host} could not be verified ({detail})."
    if isinstance(reason, ssl.SSLError):
        return f"The TLS handshake with {host} failed."
    if isinstance(reason, http.client.RemoteDisconnected):
        return f"{host} closed the connection without answering."
    if isinstance(reason, http.client.HTTPException):
        return f"{host} did not answer with valid HTTP."
    if isinstance(reason, OSError) and reason.errno in _CONNECT_WORDS:
        return f"Could not connect to {host} ({_CONNECT_WORDS[reason.errno]})."
    if isinstance(reason, str) and reason.startswith("unknown url type"):
        return "Only http:// and https:// URLs can receive webhooks."
    if isinstance(error, ValueError):
        return "The URL is not valid."
    return f"Could not reach {host}."


def post(url: str, body: bytes, headers: dict, timeout: float, allow_private: bool) -> tuple[int | None, str]:
    """POST once: (status code, error text); the error is empty for a 2xx answer."""
    try:
        host = urllib.parse.urlsplit(url).hostname or url
    except ValueError:
        host = url
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener(allow_private).open(request, timeout=timeout) as response:
            response.read(65536)
            return response.status, ""
    except urllib.error.HTTPError as error:
        error.close()
        return error.code, f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
        text = describe(error, host, timeout)
        reason = getattr(error, "reason", error)
        if isinstance(reason, Refused):
            log.warning("Webhook POST to %s not sent: %s", url, text)
        else:  # the detail users do not see, for whoever reads the control worker's log
            log.info("Webhook POST to %s failed: %s (%r)", host, text, reason)
        return None, text
