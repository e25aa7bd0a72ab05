"""Webhooks never reach internal addresses (SSRF): not by an address in the URL, not through a
name that resolves to one, not when the name changes its answer between the check and the
connection. Checked on the resolved address at connect time, with the URL as the user typed it.

SAFETY: nothing here may send a packet anywhere but loopback. Every test in this module runs
with socket connections outside loopback turned into loud test failures, and with a fake DNS
that answers the made-up names of each test (any other name is "not found": no real DNS query).
"""

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from automation import webhooks
from automation.forms import WebhookForm
from automation.models import Event, Webhook, WebhookDelivery
from tests.automation.conftest import Receiver

REFUSAL = ("Swarmdeck does not send webhooks to internal addresses (an admin can allow it with "
           "SWARMDECK_WEBHOOK_ALLOW_PRIVATE=1).")


def _is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Any connection attempt to a non-loopback address fails the test, before a packet leaves."""
    outside = []
    real_connect, real_connect_ex, real_create = (socket.socket.connect, socket.socket.connect_ex,
                                                  socket.create_connection)

    def check(address):
        if isinstance(address, tuple) and not _is_loopback(str(address[0])):
            outside.append(address)
            pytest.fail(f"SAFETY: something tried to connect to {address!r}, outside loopback")

    def connect(sock, address):
        check(address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(address)
        return real_connect_ex(sock, address)

    def create_connection(address, *args, **kwargs):
        check(address)
        return real_create(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield outside
    assert outside == [], "connections outside loopback were attempted"


class FakeDNS:
    def __init__(self):
        self.table: dict[str, list[str]] = {}
        self.queries: list[str] = []


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    """Made-up names answer what the test says; literals and localhost go to the real resolver
    (no network: parsed or read from /etc/hosts); every other name is not found."""
    fake = FakeDNS()
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        fake.queries.append(name)
        if name in fake.table:
            port = int(port or 0)
            answers = []
            for text in fake.table[name]:
                ip = ipaddress.ip_address(text)
                if ip.version == 4:
                    answers.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (text, port)))
                else:
                    answers.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (text, port, 0, 0)))
            return answers
        if name is None or name == "localhost" or _is_literal(name):
            return real(host, port, family, type, proto, flags)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


def _is_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def private_refused(settings):
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = False
    return settings


def _hook(project, url):
    return Webhook.objects.create(project=project, url=url, events=[Event.RUN_FINISHED])


def _delivery(hook):
    return WebhookDelivery.objects.create(webhook=hook, event=Event.RUN_FINISHED, payload={"event": "run.finished"})


def _refused(subject: str) -> str:
    return f"Refused: {subject}; {REFUSAL}"


# The attack: a real server on loopback that must receive nothing.

def test_it_refuses_to_ping_or_deliver_to_a_loopback_address(project, receiver):
    port = receiver.server.server_port
    for url, subject in [(f"http://127.0.0.1:{port}/hooks", "127.0.0.1 is a loopback address"),
                         (f"http://localhost:{port}/hooks", "localhost resolves to 127.0.0.1, a loopback address"),
                         (f"http://[::ffff:127.0.0.1]:{port}/hooks", "::ffff:127.0.0.1 is a loopback address")]:
        hook = _hook(project, url)
        status, error, _ = webhooks.ping(hook)
        assert (status, error) == (None, _refused(subject))
        delivery = _delivery(hook)
        assert webhooks.attempt_delivery(delivery.pk) == 10  # retried later: the setting or the DNS may change
        delivery.refresh_from_db()
        assert (delivery.last_status_code, delivery.last_error) == (None, _refused(subject))
        assert delivery.attempt_log.get().error == _refused(subject)
    assert receiver.requests == []


def test_it_refuses_ipv6_loopback(project):
    status, error, _ = webhooks.ping(_hook(project, "http://[::1]:8080/hooks"))
    assert (status, error) == (None, _refused("::1 is a loopback address"))


def test_it_sends_to_loopback_when_the_admin_allows_it(settings, project, receiver):
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    port = receiver.server.server_port
    for url in (f"http://127.0.0.1:{port}/hooks", f"http://localhost:{port}/hooks"):
        hook = _hook(project, url)
        assert webhooks.ping(hook)[:2] == (200, "")
        assert webhooks.attempt_delivery(_delivery(hook).pk) is None
    assert [r["headers"]["X-Swarmdeck-Event"] for r in receiver.requests] == ["ping", "run.finished"] * 2
    assert receiver.requests[2]["headers"]["Host"] == f"localhost:{port}"


def test_it_refuses_the_metadata_address_directly(project):
    hook = _hook(project, "http://169.254.169.254/latest/meta-data/iam/security-credentials/")
    expected = _refused("169.254.169.254 is a link-local address (the cloud metadata service)")
    assert webhooks.ping(hook)[:2] == (None, expected)
    delivery = _delivery(hook)
    webhooks.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.last_error == expected


def test_it_refuses_a_name_that_resolves_to_the_metadata_address(dns, project):
    dns.table["metadata.attacker.example"] = ["169.254.169.254"]
    hook = _hook(project, "http://metadata.attacker.example/latest/meta-data/")
    expected = _refused("metadata.attacker.example resolves to 169.254.169.254, a link-local address "
                        "(the cloud metadata service)")
    assert webhooks.ping(hook)[:2] == (None, expected)
    delivery = _delivery(hook)
    webhooks.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.last_error == expected and "metadata.attacker.example" in dns.queries


def test_it_checks_the_address_when_connecting_not_only_when_saving(dns, project, receiver):
    """DNS rebinding: the name looks public when the webhook is saved, then answers loopback."""
    port = receiver.server.server_port
    dns.table["rebind.example"] = ["93.184.216.34"]
    form = WebhookForm({"url": f"http://rebind.example:{port}/hooks", "events": [Event.RUN_FINISHED],
                        "enabled": "on"}, instance=Webhook(project=project))
    assert form.is_valid(), form.errors
    hook = form.save()
    dns.table["rebind.example"] = ["127.0.0.1"]
    assert webhooks.ping(hook)[:2] == (None, _refused("rebind.example resolves to 127.0.0.1, a loopback address"))
    assert receiver.requests == []


def test_it_refuses_a_name_when_any_of_its_addresses_is_internal(dns, project, receiver):
    dns.table["mixed.example"] = ["93.184.216.34", "127.0.0.1"]
    hook = _hook(project, f"http://mixed.example:{receiver.server.server_port}/hooks")
    assert webhooks.ping(hook)[:2] == (None, _refused("mixed.example resolves to 127.0.0.1, a loopback address"))
    assert receiver.requests == []  # and loopback_only saw no attempt to reach 93.184.216.34


def test_it_connects_to_the_address_it_checked_with_the_name_in_the_request(settings, dns, project, receiver):
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    port = receiver.server.server_port
    dns.table["hooks.test"] = ["127.0.0.1"]
    assert webhooks.ping(_hook(project, f"http://hooks.test:{port}/in"))[:2] == (200, "")
    assert dns.queries.count("hooks.test") == 1  # resolved once: the connection uses that answer
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"hooks.test:{port}" and request["path"] == "/in"


def test_it_ignores_proxies_from_the_environment(settings, monkeypatch, project, receiver):
    """A proxy would connect on our behalf, past the address check."""
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    proxy = Receiver()
    try:
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.server.server_port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        assert webhooks.ping(_hook(project, receiver.url))[:2] == (200, "")
        assert len(receiver.requests) == 1 and proxy.requests == []
    finally:
        proxy.stop()


def test_it_answers_in_words(settings, monkeypatch, project):
    from controlcenter.processes import free_port

    assert webhooks.ping(_hook(project, "https://x.invalid/hooks"))[:2] == (
        None, "Could not resolve the host name x.invalid.")

    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.ping(_hook(project, f"http://127.0.0.1:{free_port()}/nobody"))[:2] == (
        None, "Could not connect to 127.0.0.1 (connection refused).")

    silent = socket.socket()  # accepts connections (backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        monkeypatch.setattr(webhooks, "REQUEST_TIMEOUT", 0.3)
        assert webhooks.ping(_hook(project, f"http://127.0.0.1:{silent.getsockname()[1]}/slow"))[:2] == (
            None, "Timed out after 0.3 s.")
    finally:
        silent.close()


def test_the_ping_page_says_why_it_refused(client, alice, project, receiver):
    hook = _hook(project, receiver.url)
    client.force_login(alice)
    page = client.post(reverse("automation-webhook-ping", args=[hook.pk]), follow=True).content.decode()
    assert "Ping failed: Refused: 127.0.0.1 is a loopback address; Swarmdeck does not send webhooks" in page
    assert "SWARMDECK_WEBHOOK_ALLOW_PRIVATE=1" in page and "Errno" not in page
    assert receiver.requests == []


# The form refuses what it can see at save time.

def _form(project, url):
    return WebhookForm({"url": url, "events": [Event.RUN_FINISHED], "enabled": "on"},
                       instance=Webhook(project=project))


def test_the_form_refuses_an_internal_url(dns, project):
    dns.table["metadata.attacker.example"] = ["169.254.169.254", "fd00:ec2::254"]
    for url, subject in [
        ("http://127.0.0.1:8080/in", "127.0.0.1 is a loopback address"),
        ("http://[::1]/in", "::1 is a loopback address"),
        ("http://0.0.0.0:9000/", "0.0.0.0 is an unspecified address"),
        ("https://10.1.2.3/in", "10.1.2.3 is a private address"),
        ("https://192.168.0.10/in", "192.168.0.10 is a private address"),
        ("http://169.254.169.254/latest/", "169.254.169.254 is a link-local address (the cloud metadata service)"),
        ("http://metadata.attacker.example/", ("metadata.attacker.example resolves to 169.254.169.254, a link-local "
                                               "address (the cloud metadata service)")),
    ]:
        form = _form(project, url)
        assert not form.is_valid()
        assert form.errors["url"] == [f"{subject[0].upper()}{subject[1:]}; {REFUSAL}"], url


def test_the_form_accepts_public_and_unresolvable_names_and_anything_when_allowed(settings, dns, project):
    dns.table["hooks.example.com"] = ["93.184.216.34"]
    dns.table["half.example.com"] = ["93.184.216.34", "10.0.0.5"]  # the connection will refuse it
    for url in ("https://hooks.example.com/in", "https://half.example.com/in", "https://93.184.216.34/in",
                "https://not-yet.invalid/in"):
        assert _form(project, url).is_valid(), url
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    assert _form(project, "http://127.0.0.1:8080/in").is_valid()


# The address rule itself (pure: nothing is connected).

@pytest.mark.parametrize("address,kind", [
    ("127.0.0.1", "a loopback address"),
    ("127.10.20.30", "a loopback address"),
    ("::1", "a loopback address"),
    ("::ffff:127.0.0.1", "a loopback address"),
    ("0.0.0.0", "an unspecified address"),
    ("::", "an unspecified address"),
    ("10.0.0.1", "a private address"),
    ("172.16.5.4", "a private address"),
    ("192.168.1.1", "a private address"),
    ("fc00::1", "a private address"),
    ("169.254.169.254", "a link-local address (the cloud metadata service)"),
    ("::ffff:169.254.169.254", "a link-local address (the cloud metadata service)"),
    ("fd00:ec2::254", "a private address (the cloud metadata service)"),
    ("169.254.1.1", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("100.64.0.1", "a shared (carrier-grade NAT) address"),
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("240.0.0.1", "a private address"),
    ("255.255.255.255", "a private address"),
    ("::7f00:1", "a loopback address"),               # IPv4-compatible ::127.0.0.1
    ("64:ff9b::a9fe:a9fe", "a link-local address (the cloud metadata service)"),  # NAT64 of 169.254.169.254
    ("2002:7f00:1::", "a loopback address"),          # 6to4 of 127.0.0.1
    ("2002:c0a8:101::1", "a private address"),        # 6to4 of 192.168.1.1
    ("fec0::1", "a site-local address"),
])
def test_it_refuses_internal_addresses(address, kind):
    from automation import safe_http

    assert safe_http.address_problem(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946",
                                     "::ffff:93.184.216.34"])
def test_it_accepts_public_addresses(address):
    from automation import safe_http

    assert safe_http.address_problem(ipaddress.ip_address(address)) is None


# HTTPS: the certificate is verified for the name in the URL, which is also sent as SNI.

@pytest.fixture
def tls_receiver(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test"],
                   check=True, capture_output=True)
    names, requests = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            requests.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sslobj, name, ctx: names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield {"port": server.server_port, "cert": str(cert), "names": names, "requests": requests}
    server.shutdown()
    server.server_close()


def test_it_verifies_the_certificate_for_the_name_in_the_url(settings, monkeypatch, dns, project, tls_receiver):
    from automation import safe_http

    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True
    dns.table["hooks.test"] = dns.table["other.test"] = ["127.0.0.1"]
    port = tls_receiver["port"]

    status, error, _ = webhooks.ping(_hook(project, f"https://hooks.test:{port}/in"))
    assert status is None and error.startswith("The TLS certificate of hooks.test could not be verified (")
    assert "Errno" not in error

    monkeypatch.setattr(safe_http, "tls_context", lambda: ssl.create_default_context(cafile=tls_receiver["cert"]))
    assert webhooks.ping(_hook(project, f"https://hooks.test:{port}/in"))[:2] == (204, "")
    assert tls_receiver["names"][-1] == "hooks.test" and len(tls_receiver["requests"]) == 1

    status, error = webhooks.ping(_hook(project, f"https://other.test:{port}/in"))[:2]
    assert status is None and error.startswith("The TLS certificate of other.test could not be verified (")
    assert "other.test" in error.removeprefix("The TLS certificate of other.test")  # the mismatch is named
    assert tls_receiver["names"][-1] == "other.test" and len(tls_receiver["requests"]) == 1
