"""The matching rules of allowed targets (workers/target_rules.py): exact, wildcard, CIDR, ports, loopback."""

import pytest

from workers.target_rules import CIDR, HOST, WILDCARD, PatternError, Rules, parse


@pytest.mark.parametrize("written,kind,text", [
    ("API.Example.com", HOST, "api.example.com"),
    ("api.example.com.", HOST, "api.example.com"),
    ("api.example.com:8443", HOST, "api.example.com:8443"),
    ("https://api.example.com:8443/some/path?q=1", HOST, "api.example.com:8443"),
    ("https://api.example.com/", HOST, "api.example.com"),
    ("203.0.113.7", HOST, "203.0.113.7"),
    ("[2001:DB8::1]:8080", HOST, "[2001:db8::1]:8080"),
    ("2001:db8::1", HOST, "2001:db8::1"),
    ("*.example.com", WILDCARD, "*.example.com"),
    ("*.example.com:443", WILDCARD, "*.example.com:443"),
    ("203.0.113.9/24", CIDR, "203.0.113.0/24"),
    ("2001:db8::/32", CIDR, "2001:db8::/32"),
])
def test_it_normalises_what_a_maintainer_writes(written, kind, text):
    pattern = parse(written)
    assert (pattern.kind, pattern.text) == (kind, text)


@pytest.mark.parametrize("written,words", [
    ("", "Write a host"),
    ("*.com", "top-level domain"),
    ("*", "only at the start"),
    ("api.*.example.com", "only at the start"),
    ("*.10.0.0.1", "CIDR form"),
    ("exa mple.com", "not a host name"),
    ("-bad.example.com", "not a host name"),
    ("example.com:0", "port must be a number from 1 to 65535"),
    ("example.com:99999", "port must be"),
    ("example.com:http", "port must be"),
    ("10.0.0.0/33", "not a CIDR range"),
    ("example.com/24", "not a CIDR range"),
    ("[::1", "without closing"),
    ("x" * 300, "at most 255"),
])
def test_it_refuses_patterns_it_cannot_match(written, words):
    with pytest.raises(PatternError, match=words):
        parse(written)


def allows(patterns, url, loopback=False):
    return Rules(patterns, allow_loopback=loopback).refusal(url) is None


def test_it_matches_an_exact_host_on_every_port_when_none_is_given():
    assert allows(["api.example.com"], "https://api.example.com/x")
    assert allows(["api.example.com"], "http://API.example.com:8080/x")
    assert not allows(["api.example.com"], "https://www.example.com/")
    assert not allows(["api.example.com"], "https://api.example.com.evil.test/")
    assert not allows(["api.example.com"], "https://evilapi.example.com/")


def test_it_matches_a_port_against_the_schemes_default():
    assert allows(["api.example.com:443"], "https://api.example.com/")
    assert not allows(["api.example.com:443"], "http://api.example.com/")
    assert allows(["api.example.com:80"], "http://api.example.com/")
    assert allows(["api.example.com:8443"], "https://api.example.com:8443/")
    assert not allows(["api.example.com:8443"], "https://api.example.com:8444/")


def test_it_matches_a_wildcard_below_the_domain_only():
    rules = ["*.example.com"]
    assert allows(rules, "https://a.example.com/")
    assert allows(rules, "https://a.b.example.com:9000/")
    assert not allows(rules, "https://example.com/")
    assert not allows(rules, "https://badexample.com/")
    assert not allows(rules, "https://a.example.com.evil.test/")
    assert allows(["*.example.com:8443"], "https://a.example.com:8443/")
    assert not allows(["*.example.com:8443"], "https://a.example.com/")


def test_it_matches_a_cidr_range_against_ip_addresses_only():
    assert allows(["203.0.113.0/24"], "http://203.0.113.200:8080/")
    assert not allows(["203.0.113.0/24"], "http://203.0.114.1/")
    assert not allows(["203.0.113.0/24"], "http://host-203-0-113-5.example.com/")  # names are never resolved
    assert allows(["2001:db8::/32"], "http://[2001:db8:1::5]/")
    assert not allows(["2001:db8::/32"], "http://[2001:db9::5]/")
    assert allows(["203.0.113.0/24"], "http://[::ffff:203.0.113.4]/")  # IPv4-mapped is its IPv4 address


def test_it_compares_ip_addresses_as_addresses():
    assert allows(["2001:db8::1"], "http://[2001:0db8:0:0::1]:81/")
    assert not allows(["203.0.113.7"], "http://203.0.113.8/")


def test_it_allows_loopback_without_an_entry_only_when_told():
    for url in ("http://127.0.0.1:8089/", "http://127.5.6.7/", "http://[::1]:80/", "http://localhost:3000/"):
        assert allows([], url, loopback=True)
        assert not allows([], url, loopback=False)
    assert not allows([], "http://10.0.0.1/", loopback=True)


def test_it_names_the_refused_host_with_the_port_as_written():
    rules = Rules(["api.example.com:443"])
    assert rules.refusal("http://api.example.com:8080/x") == "api.example.com:8080"
    assert rules.refusal("http://other.example.com/x") == "other.example.com"
    assert rules.refusal("http://[2001:db8::1]:81/") == "[2001:db8::1]:81"
    assert rules.refusal("https://api.example.com/") is None


# URLs whose host part ends in different places, or that try to look like another host to a
# prefix match: the cached decision (by origin_key) must be the decision of a fresh parse.
TRICKY_URLS = [
    "http://api.example.com/x", "http://api.example.com", "http://api.example.com?q=http://evil.test/",
    "http://api.example.com#http://evil.test/", "http://api.example.com.evil.test/",
    "http://api.example.com@evil.test/", "http://evil.test@api.example.com/", "http://evil.test/?http://api.example.com/",
    "http://api.example.com:443/", "https://api.example.com/", "HTTPS://API.EXAMPLE.COM/", "http://[::1]:80/",
    "http://127.0.0.1/", "//api.example.com/x", "/relative/http://api.example.com/", "api.example.com/x",
    "http://api.example.com\t.evil.test/", "http://api.exa\nmple.com/", "http://a://api.example.com/", "",
    "http://api.example.com:99999/", "http://evil.test:443/http://api.example.com/",
]


@pytest.mark.parametrize("loopback", [True, False])
def test_its_cached_decisions_are_the_decisions_of_a_fresh_parse(loopback):
    cached = Rules(["api.example.com:443", "*.example.com"], loopback)
    for _ in range(2):  # the second round answers from the cache
        for url in TRICKY_URLS:
            fresh = Rules(["api.example.com:443", "*.example.com"], loopback)
            assert cached.refusal(url) == fresh._refusal(url), url


def test_its_cache_of_decisions_stays_bounded():
    from workers.target_rules import MAX_CACHED_ORIGINS

    rules = Rules(["api.example.com"])
    for port in range(1, 3 * MAX_CACHED_ORIGINS):
        assert rules.refusal(f"http://other.example.com:{port}/") == f"other.example.com:{port}"
        assert len(rules._decided) <= MAX_CACHED_ORIGINS
    assert rules.refusal("http://api.example.com:1/") is None
