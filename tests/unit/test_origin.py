"""The same-origin rule, the page's security headers and the log throttle:
pure functions, no sockets."""

from __future__ import annotations

import pytest

from web.gate import LogThrottle
from web.headers import content_security_policy, security_headers
from web.origin import Origin, OriginRule, parse_origin, same_origin

DEFAULT = OriginRule.from_list([])


@pytest.mark.parametrize(("origin", "host"), [
    ("http://127.0.0.1:8000", "127.0.0.1:8000"),
    ("http://LOCALHOST:8000", "localhost:8000"),       # host names are case-insensitive
    ("http://example.com", "example.com"),             # both on http's default port
    ("http://example.com", "example.com:80"),
    ("http://example.com:80", "example.com"),
    ("https://example.com", "example.com"),            # TLS proxy in front: Host has no port
    ("https://example.com", "example.com:443"),
    ("https://example.com:443", "Example.COM"),
    ("http://[::1]:8000", "[::1]:8000"),
    ("http://[::1]", "[::1]"),
    ("http://example.com:8000/", "example.com:8000"),  # a trailing slash is tolerated
])
def test_same_origin_is_served(origin: str, host: str) -> None:
    assert DEFAULT.allows(origin, host)


@pytest.mark.parametrize(("origin", "host"), [
    ("http://127.0.0.1:9999", "127.0.0.1:8000"),       # another port on the same host
    ("http://evil.example:8000", "127.0.0.1:8000"),
    ("http://127.0.0.1", "127.0.0.1:8000"),            # :80 is not :8000
    ("https://example.com", "example.com:80"),         # :443 is not :80
    ("http://example.com", "example.com:443"),
    ("http://example.com:443", "example.com"),
    ("http://[::1]:9999", "[::1]:8000"),
    ("http://127.0.0.1:8000", None),                   # no Host: nothing to compare with
    ("http://127.0.0.1:8000", "127.0.0.1:8000, evil"),
    ("null", "127.0.0.1:8000"),                        # sandboxed frames, file:// pages
    ("http://user@127.0.0.1:8000", "127.0.0.1:8000"),
    ("http://127.0.0.1:8000/path", "127.0.0.1:8000"),
    ("chrome-extension://abc", "abc"),                  # unknown scheme, no default port
    ("http://127.0.0.1:0", "127.0.0.1:0"),
    ("", "127.0.0.1:8000"),
])
def test_other_origin_is_refused(origin: str, host: str | None) -> None:
    assert not DEFAULT.allows(origin, host)


def test_no_origin_is_served() -> None:
    """Programs (tcpws.tail, curl, Python) send no Origin: served as ever."""
    assert DEFAULT.allows(None, "127.0.0.1:8000")
    assert DEFAULT.allows(None, None)


def test_allow_list() -> None:
    rule = OriginRule.from_list(["https://public.example", "http://127.0.0.1:9999/",
                                 " null ", ""])
    assert rule.allows("https://public.example", "127.0.0.1:8000")
    assert rule.allows("https://public.example:443", "127.0.0.1:8000")  # same origin, spelt out
    assert rule.allows("HTTP://127.0.0.1:9999", "127.0.0.1:8000")
    assert rule.allows("null", "127.0.0.1:8000")
    assert rule.allows("http://127.0.0.1:8000", "127.0.0.1:8000")  # own origin still served
    assert not rule.allows("http://public.example", "127.0.0.1:8000")  # scheme differs
    assert not rule.allows("http://127.0.0.1:9998", "127.0.0.1:8000")


def test_star_allows_any() -> None:
    rule = OriginRule.from_list(["*"])
    assert rule.allows("http://evil.example", "127.0.0.1:8000")
    assert rule.allows("null", None)


def test_parse_origin() -> None:
    assert parse_origin("https://Example.com") == Origin("https", "example.com", 443)
    assert parse_origin("http://[::1]:8000") == Origin("http", "[::1]", 8000)
    assert parse_origin("http://h:65536") is None
    assert parse_origin("h:8000") is None
    assert same_origin(Origin("http", "h", 80), "h")


def test_security_headers() -> None:
    headers = dict(security_headers("127.0.0.1:8000"))
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"referrer-policy"] == b"no-referrer"
    csp = headers[b"content-security-policy"].decode()
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self' ws://127.0.0.1:8000 wss://127.0.0.1:8000"
    assert "unsafe" not in csp


@pytest.mark.parametrize("host", [None, "evil; script-src *", "a b", "h:8000\r\nX: y", ""])
def test_policy_never_copies_a_strange_host(host: str | None) -> None:
    csp = content_security_policy(host)
    assert "connect-src 'self';" in csp
    assert "*" not in csp


def test_log_throttle_lets_one_line_a_minute() -> None:
    now = [1000.0]
    throttle = LogThrottle(60.0, clock=lambda: now[0])
    assert throttle.ready()
    assert [throttle.ready() for _ in range(5)] == [False] * 5
    now[0] += 59.9
    assert not throttle.ready()
    now[0] += 0.2
    assert throttle.ready()
    assert throttle.take() == 6
    assert throttle.take() == 0
