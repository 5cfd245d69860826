"""Which browser pages may open a stream: the same-origin rule, pure.

Browsers do not apply the same-origin policy to WebSockets (nor let a page
hide its `Origin`), so a page on any site could read the stream through a
visitor's browser; only the server can refuse it. A handshake is served when
it carries no `Origin` (programs, not browsers), when the origin's host and
port equal the request's `Host`, or when the allow-list names the origin
(`*`: any).

Default ports: an origin without a port has its scheme's (`http://h` is
h:80, `https://h` is h:443). A `Host` without a port stands for the default
port of the origin's scheme: that is what a browser sends for a page on a
standard port, also through a proxy that terminates TLS and speaks plain
HTTP to us (so the request's own scheme says nothing about the browser's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# A host as it appears in Origin and Host: a name or IPv4 address, or a
# bracketed IPv6 address; then an optional port.
_HOST_PORT = re.compile(r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_.\-]+)(?::(?P<port>\d{1,5}))?")


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lower case; IPv6 keeps its brackets
    port: int  # explicit, or the scheme's default


def _host_port(text: str) -> tuple[str, int | None] | None:
    """`h`, `h:8000`, `[::1]:8000` -> (host, port or None); None if malformed."""
    m = _HOST_PORT.fullmatch(text.strip().lower())
    if m is None:
        return None
    port = m.group("port")
    if port is None:
        return m.group("host"), None
    value = int(port)
    return (m.group("host"), value) if 0 < value < 65536 else None


def parse_origin(text: str) -> Origin | None:
    """`scheme://host[:port]` (what browsers send) -> Origin; None for
    anything else (`null`, a path, an unknown scheme without a port)."""
    scheme, sep, rest = text.strip().lower().partition("://")
    if not sep:
        return None
    hp = _host_port(rest.rstrip("/"))
    if hp is None:
        return None
    host, port = hp
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
        if port is None:
            return None
    return Origin(scheme, host, port)


def same_origin(origin: Origin, host_header: str | None) -> bool:
    """True when `origin` names the host and port the request was sent to."""
    if host_header is None:
        return False
    hp = _host_port(host_header)
    if hp is None:
        return False
    host, port = hp
    if port is None:
        port = DEFAULT_PORTS.get(origin.scheme)
    return origin.host == host and origin.port == port


@dataclass(frozen=True)
class OriginRule:
    """The same-origin rule plus an allow-list (`--allowed-origins`)."""

    allowed: frozenset[Origin] = frozenset()
    allowed_text: frozenset[str] = frozenset()  # entries that are no URL origin, e.g. `null`
    any_origin: bool = False

    @classmethod
    def from_list(cls, entries: Iterable[str]) -> OriginRule:
        parsed: set[Origin] = set()
        text: set[str] = set()
        any_origin = False
        for entry in (e.strip() for e in entries):
            if entry == "*":
                any_origin = True
            elif entry:
                origin = parse_origin(entry)
                if origin is None:
                    text.add(entry.lower().rstrip("/"))
                else:
                    parsed.add(origin)
        return cls(frozenset(parsed), frozenset(text), any_origin)

    def allows(self, origin_header: str | None, host_header: str | None) -> bool:
        if origin_header is None or self.any_origin:
            return True
        origin = parse_origin(origin_header)
        if origin is None:
            return origin_header.strip().lower().rstrip("/") in self.allowed_text
        return origin in self.allowed or same_origin(origin, host_header)
