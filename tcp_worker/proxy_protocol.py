"""The PROXY protocol header (HAProxy's proxy-protocol.txt, v1 text and v2
binary) that a load balancer sends first on each connection: who the real
client is. Pure: bytes in, a `ProxyHeader` or a `ProxyHeaderError` out.

Hand-written: the PyPI package (proxy-protocol) reads from a StreamReader,
and the worker's connections are asyncio Protocols fed by data_received;
this reader is fed the same way and never awaits.

`ProxyHeaderReader.feed(data)` takes the bytes of each read: None while the
header is not complete, then the header (`rest` holds the bytes after it,
the first bytes of the stream). `eof()` says the connection ended first.
Before TLS, where no byte past the header may be read (`loop.start_tls`
cannot be handed bytes read already), `header_bytes_in(peeked)` says how
many of the bytes a MSG_PEEK saw to recv() and feed.
Every bad header raises `ProxyHeaderError` with one of `CAUSES`:

  not_proxy  the first bytes are neither signature (plain client, scanner)
  bad_v1     a v1 line that breaks the grammar
  too_long   a v1 line past 107 bytes, or a v2 header past `max_v2_length`
  bad_v2     a v2 version, command, family or length that is not allowed
  truncated  the connection ended inside the header
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V1_SIGNATURE = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107  # the whole line, CRLF included
V2_FIXED = 16  # signature, version/command, family/protocol, length
V2_MAX_LENGTH = 65535  # what the 16-bit length field can say
CAUSES = ("not_proxy", "bad_v1", "too_long", "bad_v2", "truncated")

# v2 family/protocol byte -> (address bytes, struct format) for a TCP source.
_V2_STREAM = {0x11: (12, "!4s4sHH"), 0x21: (36, "!16s16sHH")}
_V2_UNIX_STREAM = 0x31
_V2_UNSPEC = 0x00
Address = tuple[str, int]


class ProxyHeaderError(ValueError):
    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"PROXY header: {detail}")
        self.cause = cause


@dataclass(frozen=True)
class ProxyHeader:
    version: int  # 1 or 2
    source: Address | None  # None: LOCAL, UNKNOWN, UNSPEC or UNIX: keep the socket's peer
    destination: Address | None
    length: int  # bytes of the header
    tlvs: bytes = b""  # v2 only: the TLV area after the addresses, unparsed


def parse(data: bytes, max_v2_length: int = V2_MAX_LENGTH) -> ProxyHeader | None:
    """The header at the start of `data`, or None if `data` may still become
    one (a prefix of a valid header). Raises ProxyHeaderError otherwise."""
    if data[:1] == b"\r":
        if len(data) < V2_FIXED:
            _prefix_of(V2_SIGNATURE, data[:12])
            return None
        return _parse_v2(data, max_v2_length)
    if len(data) <= len(V1_SIGNATURE):
        _prefix_of(V1_SIGNATURE, data)
        return None
    if not data.startswith(V1_SIGNATURE):
        raise ProxyHeaderError("not_proxy", "no PROXY protocol signature")
    return _parse_v1(data)


def _prefix_of(signature: bytes, data: bytes) -> None:
    if not signature.startswith(data):
        raise ProxyHeaderError("not_proxy", "no PROXY protocol signature")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("too_long", f"v1 line longer than {V1_MAX} bytes")
        if b"\n" in data:
            raise ProxyHeaderError("bad_v1", "v1 line not ended by CRLF")
        return None
    line = data[:end]
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError("bad_v1", "v1 line is not ASCII") from None
    parts = text.split(" ")
    length = end + 2
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(1, None, None, length)  # the rest of an UNKNOWN line is ignored
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("bad_v1", f"v1 line is not PROXY TCP4|TCP6|UNKNOWN ...: "
                                         f"{text[:40]!r}")
    version = 4 if parts[1] == "TCP4" else 6
    source = (_v1_address(parts[2], version), _v1_port(parts[4]))
    destination = (_v1_address(parts[3], version), _v1_port(parts[5]))
    return ProxyHeader(1, source, destination, length)


def _v1_address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError("bad_v1", f"not an IP address: {text[:40]!r}") from None
    if address.version != version:
        raise ProxyHeaderError("bad_v1", f"not an IPv{version} address: {text[:40]!r}")
    return str(address)


def _v1_port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535:
        raise ProxyHeaderError("bad_v1", f"not a port: {text[:10]!r}")
    return int(text)


def _parse_v2(data: bytes, max_v2_length: int) -> ProxyHeader | None:
    if data[:12] != V2_SIGNATURE:
        raise ProxyHeaderError("not_proxy", "no PROXY protocol signature")
    version, command = data[12] >> 4, data[12] & 0x0F
    family = data[13]
    (length,) = struct.unpack_from("!H", data, 14)
    if version != 2:
        raise ProxyHeaderError("bad_v2", f"v2 header of version {version}")
    if command > 1:
        raise ProxyHeaderError("bad_v2", f"v2 command {command} (0 LOCAL or 1 PROXY)")
    if length > max_v2_length:
        raise ProxyHeaderError("too_long", f"v2 header of {length} bytes, over {max_v2_length}")
    if len(data) < V2_FIXED + length:
        return None
    body = data[V2_FIXED:V2_FIXED + length]
    total = V2_FIXED + length
    if command == 0:  # LOCAL: the balancer's own connection (a health check)
        return ProxyHeader(2, None, None, total, body)
    if family in _V2_STREAM:
        size, fmt = _V2_STREAM[family]
        if length < size:
            raise ProxyHeaderError("bad_v2", f"v2 addresses need {size} bytes, length is "
                                             f"{length}")
        src, dst, sport, dport = struct.unpack_from(fmt, body)
        src_ip, dst_ip = (str(ipaddress.ip_address(a)) for a in (src, dst))
        return ProxyHeader(2, (src_ip, sport), (dst_ip, dport), total, body[size:])
    if family in (_V2_UNSPEC, _V2_UNIX_STREAM):
        return ProxyHeader(2, None, None, total, body)
    raise ProxyHeaderError("bad_v2", f"v2 family/protocol 0x{family:02x} is not a stream")


class ProxyHeaderReader:
    """Fed each read until the header is complete; holds at most one
    header's bytes (107 for v1, 16 + max_v2_length for v2)."""

    def __init__(self, max_v2_length: int = V2_MAX_LENGTH) -> None:
        self._buffer = bytearray()
        self._max_v2 = max_v2_length
        self._needed = 0  # bytes to wait for before parsing again
        self.header: ProxyHeader | None = None
        self.rest = b""

    def feed(self, data: bytes) -> ProxyHeader | None:
        assert self.header is None, "header already read"
        self._buffer += data
        if len(self._buffer) < self._needed:
            return None  # a v2 header whose length is known: nothing to parse yet
        header = parse(bytes(self._buffer), self._max_v2)
        if header is None:
            self._needed = _v2_total(self._buffer)
            return None
        self.header, self.rest = header, bytes(self._buffer[header.length:])
        self._buffer.clear()
        return header

    def header_bytes_in(self, peeked: bytes) -> int:
        """How many of `peeked` (bytes waiting in the socket, seen with
        MSG_PEEK, after those fed so far) belong to the header: a caller
        that recv()s exactly that many and feeds them leaves the first byte
        after the header, a TLS ClientHello say, in the socket for
        `loop.connect_accepted_socket(..., ssl=...)`. Raises as `feed`."""
        assert self.header is None, "header already read"
        header = parse(bytes(self._buffer) + peeked, self._max_v2)
        if header is None:
            return len(peeked)  # all of it, and the header goes on past it
        return header.length - len(self._buffer)

    def eof(self) -> None:
        """The connection ended: an error unless the header was read."""
        if self.header is None:
            raise ProxyHeaderError("truncated", f"connection ended after {len(self._buffer)} "
                                                "bytes of the header")


def _v2_total(data: bytearray) -> int:
    """The whole length of a v2 header once its fixed part is in, else 0."""
    if len(data) < V2_FIXED or data[:12] != V2_SIGNATURE:
        return 0
    (length,) = struct.unpack_from("!H", data, 14)
    return V2_FIXED + int(length)
