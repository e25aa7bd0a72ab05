"""Proof of control over a local HTTP server the test starts on 127.0.0.1 (never any other address):
the token file approves an exact host; a wrong file, a redirect elsewhere, a huge file or an
internal address (unless webhooks may reach them) do not."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from targets import proof, services
from targets.models import AllowedTarget
from tests.targets.conftest import allow


class Site:
    """Serves `files` (path -> (status, body, headers)); records the paths asked for."""

    def __init__(self):
        self.files: dict[str, tuple[int, bytes, dict]] = {}
        self.asked: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.asked.append(self.path)
                status, body, headers = site.files.get(self.path, (404, b"not here", {}))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    server = Site()
    yield server
    server.stop()


@pytest.fixture
def private_allowed(settings):
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = True  # the fetch obeys the webhooks' SSRF rule
    return settings


@pytest.fixture
def entry(project, site):
    return allow(project, f"127.0.0.1:{site.port}", status=AllowedTarget.Status.PROPOSED)


def test_it_approves_a_host_that_serves_its_token(client, alice, private_allowed, site, entry):
    site.files[entry.proof_path] = (200, f"{entry.token}\n".encode(), {})
    client.force_login(alice)
    response = client.post(reverse("targets-verify", args=["shop", entry.pk]), follow=True)
    entry.refresh_from_db()
    assert (entry.status, entry.verified_by, entry.decided_by) == ("approved", "http", None)
    assert f"http://127.0.0.1:{site.port}{entry.proof_path} holds the token" in entry.decision_note
    assert "is approved" in response.content.decode()
    assert entry.proof_path in site.asked
    recorded = AuditEntry.objects.get(action="target.approved")
    assert recorded.actor == alice and recorded.details["proof"] == "http"


def test_it_does_not_approve_a_file_without_the_token(client, alice, private_allowed, site, entry, project):
    other = allow(project, "other.shop.test", status=AllowedTarget.Status.PROPOSED)
    site.files[entry.proof_path] = (200, other.token.encode(), {})  # another entry's token
    client.force_login(alice)
    page = client.post(reverse("targets-verify", args=["shop", entry.pk]), follow=True).content.decode()
    entry.refresh_from_db()
    assert entry.status == "proposed" and "No proof of control" in page
    assert "the file does not hold the token" in entry.last_check
    assert "The TLS handshake with 127.0.0.1 failed" in entry.last_check  # https is tried first
    site.files.clear()
    assert "HTTP 404" in services.verify(entry, alice).summary
    assert not AuditEntry.objects.filter(action="target.approved").exists()


def test_it_follows_a_redirect_on_the_same_host_only(private_allowed, site, entry, alice):
    moved = "/proofs/token.txt"
    site.files[entry.proof_path] = (302, b"", {"Location": moved})
    site.files[moved] = (200, entry.token.encode(), {})
    assert services.verify(entry, alice).proven
    entry.refresh_from_db()
    assert entry.status == "approved"


def test_it_does_not_follow_a_redirect_to_another_host(private_allowed, site, entry, alice):
    site.files[entry.proof_path] = (301, b"", {"Location": f"http://127.0.0.2:{site.port}/token.txt"})
    result = services.verify(entry, alice)
    assert not result.proven
    assert "a redirect to another host (127.0.0.2), not followed" in result.summary
    entry.refresh_from_db()
    assert entry.status == "proposed"


def test_it_reads_only_the_first_kibibyte(private_allowed, site, entry, alice):
    site.files[entry.proof_path] = (200, b"x" * 4096 + entry.token.encode(), {})
    assert not services.verify(entry, alice).proven
    site.files[entry.proof_path] = (200, b"x" * 100 + entry.token.encode(), {})
    assert services.verify(entry, alice).proven


def test_it_refuses_internal_addresses_like_webhooks_do(settings, site, entry, alice):
    settings.SWARMDECK_WEBHOOK_ALLOW_PRIVATE = False
    site.files[entry.proof_path] = (200, entry.token.encode(), {})
    result = services.verify(entry, alice)
    assert not result.proven and "127.0.0.1 is a loopback address" in result.summary
    assert site.asked == []  # nothing was fetched


def test_it_proves_only_exact_hosts(private_allowed, project, alice):
    wildcard = allow(project, "*.shop.test", status=AllowedTarget.Status.PROPOSED)
    result = services.verify(wildcard, alice)
    assert not result.proven and "Only an exact host can be proven" in result.summary
    assert proof.proof_urls("[2001:db8::1]:8443", "abc") == [
        "https://[2001:db8::1]:8443/.well-known/swarmdeck-abc.txt", "http://[2001:db8::1]:8443/.well-known/swarmdeck-abc.txt"]
