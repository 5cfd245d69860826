"""tcp_worker.allow: --tcp-allow parsing and matching."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcp_worker.allow import AllowList
from tcpws.cli import BadValue


def test_parse_and_match() -> None:
    allow = AllowList.parse(" 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,")
    assert str(allow) == "10.0.0.0/8,192.168.1.7/32,2001:db8::/32"
    assert allow.allows("10.255.0.1")
    assert allow.allows("192.168.1.7")
    assert not allow.allows("192.168.1.8")
    assert allow.allows("2001:db8::1")
    assert not allow.allows("2001:db9::1")
    assert not allow.allows("11.0.0.1")


def test_ipv4_mapped_both_ways() -> None:
    assert AllowList.parse("10.0.0.0/8").allows("::ffff:10.1.2.3")
    assert not AllowList.parse("10.0.0.0/8").allows("::ffff:11.1.2.3")
    assert AllowList.parse("::ffff:10.0.0.0/104").allows("10.9.9.9")
    assert AllowList.parse("::ffff:10.0.0.0/104").allows("::ffff:10.9.9.9")
    assert AllowList.parse("::/0").allows("10.0.0.1")  # one client, whatever the socket


def test_not_addresses_are_refused() -> None:
    allow = AllowList.parse("0.0.0.0/0,::/0")
    assert allow.allows("127.0.0.1") and allow.allows("::1")
    assert allow.allows("fe80::1%eth0")
    for text in ("", "?", "localhost", "10.0.0.1:80", "/tmp/sock"):
        assert not allow.allows(text), text


@pytest.mark.parametrize("text", ["", " , ", "10.0.0.0/33", "10.0.0.1/8", "nope",
                                  "10.0.0.0/8,bad"])
def test_bad_lists_are_one_line(text: str) -> None:
    with pytest.raises(BadValue) as info:
        AllowList.parse(text)
    assert "\n" not in str(info.value)


@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_matches_ipaddress_v4(address: ipaddress.IPv4Address, prefix: int) -> None:
    net = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    allow = AllowList.parse(str(net))
    assert allow.allows(str(address))
    assert allow.allows(f"::ffff:{address}")
    other = ipaddress.IPv4Address(int(address) ^ (1 << 31))
    assert allow.allows(str(other)) == (other in net)


@given(st.ip_addresses(v=6), st.integers(0, 128))
def test_matches_ipaddress_v6(address: ipaddress.IPv6Address, prefix: int) -> None:
    net = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    assert AllowList.parse(str(net)).allows(str(address))
