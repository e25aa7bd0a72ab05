"""Who may scrape /metrics: a bearer token (SWARMDECK_METRICS_TOKEN) or an allowed network
(SWARMDECK_METRICS_ALLOW), never a user session. A token that is sent must be the right one,
from any address: a scraper with a stale token is told so rather than let in by its network."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int       # 401 when a token would let the scraper in, else 403
    message: str


def refusal(request: HttpRequest) -> Refusal | None:
    """None when the request may scrape, else why not."""
    token = settings.SWARMDECK_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, sent = header.partition(" ")
        if token and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
            return None
        return Refusal(401 if token else 403, "Wrong metrics token." if token else "No metrics token is set.")
    if address_allowed(request.META.get("REMOTE_ADDR", "")):
        return None
    if token:
        return Refusal(401, "A bearer token is required.")
    return Refusal(403, "This address may not scrape: see SWARMDECK_METRICS_ALLOW and SWARMDECK_METRICS_TOKEN.")


def address_allowed(address: str) -> bool:
    """The client address lies in one of SWARMDECK_METRICS_ALLOW's networks (IPv4-mapped IPv6 as IPv4)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(network) for network in settings.SWARMDECK_METRICS_ALLOW)
