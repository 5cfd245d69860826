"""tcp_worker.proxy_protocol: v1 and v2 headers, fed in any split, and
every bad header a ProxyHeaderError with its cause, never anything else."""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcp_worker.proxy_protocol import (
    CAUSES,
    V1_MAX,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    ProxyHeaderReader,
    parse,
)

PAYLOAD = b"first line\nsecond\n"


def v2(command: int, family: int, body: bytes, version: int = 2) -> bytes:
    return V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack(
        "!H", len(body)) + body


def v2_inet(src: str, dst: str, sport: int, dport: int, tlvs: bytes = b"") -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    family = 0x11 if a.version == 4 else 0x21
    return v2(1, family, a.packed + b.packed + struct.pack("!HH", sport, dport) + tlvs)


def read_all(chunks: list[bytes]) -> tuple[ProxyHeader, bytes]:
    reader = ProxyHeaderReader()
    header = None
    rest = b""
    for chunk in chunks:
        if header is None:
            header = reader.feed(chunk)
            rest = reader.rest
        else:
            rest += chunk
    assert header is not None
    return header, rest


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


V1_TCP4 = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 8001\r\n"
V1_TCP6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 8001\r\n"
CASES = [
    (V1_TCP4, ProxyHeader(1, ("192.0.2.10", 56324), ("198.51.100.1", 8001), len(V1_TCP4))),
    (V1_TCP6, ProxyHeader(1, ("2001:db8::7", 4000), ("2001:db8::1", 8001), len(V1_TCP6))),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1, None, None, 15)),
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", ProxyHeader(1, None, None, 35)),
    (v2_inet("192.0.2.10", "198.51.100.1", 56324, 8001),
     ProxyHeader(2, ("192.0.2.10", 56324), ("198.51.100.1", 8001), 28)),
    (v2_inet("2001:db8::7", "2001:db8::1", 4000, 8001, tlvs=b"\x04\x00\x01z"),
     ProxyHeader(2, ("2001:db8::7", 4000), ("2001:db8::1", 8001), 56, b"\x04\x00\x01z")),
    (v2(0, 0x00, b""), ProxyHeader(2, None, None, 16)),  # LOCAL: a health check
    (v2(0, 0x11, b"\x00" * 12), ProxyHeader(2, None, None, 28, b"\x00" * 12)),
    (v2(1, 0x00, b""), ProxyHeader(2, None, None, 16)),  # UNSPEC: keep the socket's peer
    (v2(1, 0x31, b"\x00" * 216), ProxyHeader(2, None, None, 232, b"\x00" * 216)),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_headers(data: bytes, expected: ProxyHeader) -> None:
    assert parse(data) == expected
    assert parse(data + PAYLOAD) == expected
    for cut in range(len(data)):  # every proper prefix may still become it
        assert parse(data[:cut]) is None


@settings(max_examples=300)
@given(st.sampled_from(CASES), st.lists(st.integers(0, 400), max_size=8))
def test_any_split_reads_the_same(case: tuple[bytes, ProxyHeader], cuts: list[int]) -> None:
    data, expected = case
    header, rest = read_all(split(data + PAYLOAD, cuts))
    assert header == expected
    assert rest == PAYLOAD


@settings(max_examples=200)
@given(st.ip_addresses(), st.ip_addresses(), st.integers(0, 65535), st.integers(0, 65535),
       st.lists(st.integers(0, 200), max_size=5), st.booleans())
def test_any_address_round_trips(src: ipaddress.IPv4Address | ipaddress.IPv6Address,
                                 dst: ipaddress.IPv4Address | ipaddress.IPv6Address,
                                 sport: int, dport: int, cuts: list[int], text: bool) -> None:
    if src.version != dst.version:
        dst = src
    if text:
        proto = "TCP4" if src.version == 4 else "TCP6"
        data = f"PROXY {proto} {src} {dst} {sport} {dport}\r\n".encode()
    else:
        data = v2_inet(str(src), str(dst), sport, dport)
    header, rest = read_all(split(data + PAYLOAD, cuts))
    assert header.source == (str(src), sport) and header.destination == (str(dst), dport)
    assert rest == PAYLOAD


@pytest.mark.parametrize(("data", "cause"), [
    (b"hello world\n", "not_proxy"),
    (b"GET / HTTP/1.1\r\n", "not_proxy"),
    (b"\x16\x03\x01\x02\x00", "not_proxy"),  # a TLS ClientHello: PROXY comes first
    (b"\r\n\r\n\x00\r\nQUIZ\n" + b"\x00" * 8, "not_proxy"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "bad_v1"),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "bad_v1"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "bad_v1"),
    (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "bad_v1"),
    (b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n", "bad_v1"),
    (b"PROXY TCP4 ::1 ::2 1 2\r\n", "bad_v1"),
    (b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "bad_v1"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad_v1"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad_v1"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 \xff 2\r\n", "bad_v1"),
    (b"PROXY " + b"x" * (V1_MAX - 6), "too_long"),
    (b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n", "too_long"),  # 108 bytes
    (v2(1, 0x11, b"\x00" * 12, version=1), "bad_v2"),
    (v2(2, 0x11, b"\x00" * 12), "bad_v2"),
    (v2(1, 0x11, b"\x00" * 11), "bad_v2"),
    (v2(1, 0x21, b"\x00" * 35), "bad_v2"),
    (v2(1, 0x12, b"\x00" * 12), "bad_v2"),  # UDP
    (v2(1, 0x41, b""), "bad_v2"),
])
def test_bad_headers_have_their_cause(data: bytes, cause: str) -> None:
    with pytest.raises(ProxyHeaderError) as info:
        parse(data)
    assert info.value.cause == cause
    assert str(info.value).startswith("PROXY header: ")


def test_v1_limit_is_107_bytes() -> None:
    line = b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n"
    assert len(line) == V1_MAX
    assert parse(line) == ProxyHeader(1, None, None, V1_MAX)


def test_v2_length_limit_and_truncation() -> None:
    big = v2(0, 0x00, b"\x00" * 65535)  # the most the length field says
    with pytest.raises(ProxyHeaderError) as info:
        ProxyHeaderReader(max_v2_length=1024).feed(big)
    assert info.value.cause == "too_long"
    reader = ProxyHeaderReader()
    assert reader.feed(big[:-1]) is None
    with pytest.raises(ProxyHeaderError) as info:
        reader.eof()
    assert info.value.cause == "truncated"
    assert reader.feed(big[-1:]) is not None
    reader.eof()  # read whole: nothing to say


def test_a_long_v2_header_fed_a_byte_at_a_time() -> None:
    data = v2(0, 0x00, b"\x01" * 60_000)
    reader = ProxyHeaderReader()
    for i in range(len(data) - 1):
        assert reader.feed(data[i:i + 1]) is None
    header = reader.feed(data[-1:] + b"x")
    assert header is not None and header.length == len(data) and reader.rest == b"x"


def test_real_addresses_from_the_socket_module() -> None:
    packed = socket.inet_pton(socket.AF_INET6, "::ffff:10.0.0.1")
    header = parse(v2(1, 0x21, packed + packed + b"\x00\x01\x00\x02"))
    assert header is not None and header.source == ("::ffff:a00:1", 1)


@settings(max_examples=500)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_garbage_raises_only_the_cause_error(data: bytes, cuts: list[int]) -> None:
    reader = ProxyHeaderReader()
    try:
        for chunk in split(data, cuts):
            if reader.feed(chunk) is not None:
                return
        reader.eof()
    except ProxyHeaderError as exc:
        assert exc.cause in CAUSES


@settings(max_examples=300)
@given(st.sampled_from(CASES), st.binary(min_size=1, max_size=8), st.integers(0, 100))
def test_prefixed_garbage_never_raises_anything_else(case: tuple[bytes, ProxyHeader],
                                                     noise: bytes, where: int) -> None:
    data = bytearray(case[0])
    at = where % len(data)
    data[at:at + len(noise)] = noise
    try:
        parse(bytes(data))
    except ProxyHeaderError as exc:
        assert exc.cause in CAUSES


@settings(max_examples=300)
@given(st.sampled_from(CASES), st.binary(min_size=1, max_size=40),
       st.lists(st.integers(1, 120), min_size=1, max_size=10))
def test_peeking_never_reads_past_the_header(case: tuple[bytes, ProxyHeader], after: bytes,
                                             arrivals: list[int]) -> None:
    """As a socket would: bytes arrive in pieces, the reader peeks at what
    waits, takes only the header's part, and the rest stays unread."""
    data, expected = case
    stream = data + after
    arrived = consumed = 0
    reader = ProxyHeaderReader()
    for size in [*arrivals, len(stream)]:
        arrived = min(len(stream), arrived + size)
        take = reader.header_bytes_in(stream[consumed:arrived])
        assert 0 <= take <= arrived - consumed
        header = reader.feed(stream[consumed:consumed + take])
        consumed += take
        if header is not None:
            break
    assert header == expected
    assert consumed == len(data) and reader.rest == b""
