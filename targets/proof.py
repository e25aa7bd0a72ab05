"""Proof of control: a maintainer shows that an exact host is theirs, and its entry is approved.

As AWS verifies domains: the entry's random token, served by the host itself at
``http(s)://<host>[:port]/.well-known/swarmdeck-<token>.txt``. The fetch goes through the webhooks'
SSRF-guarded opener (automation/safe_http.py: checked addresses, no environment proxies), so it
reaches internal addresses only where SWARMDECK_WEBHOOK_ALLOW_PRIVATE allows webhooks there; an
admin approves such hosts by hand. It has a short timeout, reads at most MAX_BYTES, and follows
redirects only to the same host (http -> https, another path), at most MAX_REDIRECTS.

Only exact hosts can be proven: a wildcard or a range covers hosts nobody showed to control.
"""

from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from automation import safe_http
from workers.target_rules import normalise_host, parse

log = logging.getLogger(__name__)

TIMEOUT = 5.0
MAX_BYTES = 1024
MAX_REDIRECTS = 3


@dataclass
class Result:
    proven: bool
    method: str   # "http" when proven, else ""
    summary: str  # what was found, in words (shown on the page)


def proof_urls(pattern_text: str, token: str) -> list[str]:
    """Where the file is looked for: https first, then http."""
    pattern = parse(pattern_text)
    host = f"[{pattern.host}]" if ":" in pattern.host else pattern.host
    netloc = f"{host}:{pattern.port}" if pattern.port else host
    return [f"{scheme}://{netloc}/.well-known/swarmdeck-{token}.txt" for scheme in ("https", "http")]


def fetch(url: str, *, allow_private: bool, timeout: float = TIMEOUT) -> tuple[bytes | None, str]:
    """(at most MAX_BYTES of the body, "") for a 200 at `url` or a same-host redirect of it, else (None, why)."""
    host = normalise_host(urllib.parse.urlsplit(url).hostname or "")
    opener = safe_http.opener(allow_private)
    for _ in range(MAX_REDIRECTS + 1):
        request = urllib.request.Request(url, headers={"User-Agent": "Swarmdeck proof of control"})
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.read(MAX_BYTES), ""
        except urllib.error.HTTPError as error:
            location = error.headers.get("Location") if error.code in (301, 302, 303, 307, 308) else None
            error.close()
            if not location:
                return None, f"HTTP {error.code}"
            url = urllib.parse.urljoin(url, location)
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or normalise_host(parts.hostname or "") != host:
                elsewhere = parts.hostname or location
                return None, f"HTTP {error.code}: a redirect to another host ({elsewhere}), not followed"
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
            return None, safe_http.describe(error, host, timeout)
    return None, f"more than {MAX_REDIRECTS} redirects"


def check(entry) -> Result:
    """Look for the entry's token file over https, then http."""
    if not entry.provable:
        return Result(False, "", "Only an exact host can be proven; an admin approves wildcards and ranges.")
    allow_private = safe_http.private_allowed()
    found = []
    for url in proof_urls(entry.pattern, entry.token):
        body, problem = fetch(url, allow_private=allow_private)
        if body is not None and entry.token in body.decode("utf-8", "replace"):
            log.info("Allowed target %s of project %s proven by %s.", entry.pattern, entry.project_id, url)
            return Result(True, "http", f"{url} holds the token")
        found.append(f"{url}: {problem or 'the file does not hold the token'}")
    return Result(False, "", "; ".join(found))
