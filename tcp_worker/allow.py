"""`--tcp-allow CIDR[,CIDR…]`: the source addresses that may connect. Pure:
`AllowList.parse(text)` (raises cli.BadValue, one line) and
`allows(address)`.

IPv4-mapped IPv6 (`::ffff:10.1.2.3`, what a dual-stack socket reports for
an IPv4 client) and the IPv4 address it carries are one client, judged the
same whatever the socket's family: either spelling in the list matches
either spelling of the address (so `::/0` takes IPv4 clients too). A bare
address is a /32 (/128)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tcpws.cli import BadValue

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmapped_network(net: Network) -> Network:
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED):
        base = net.network_address.ipv4_mapped
        assert base is not None
        return ipaddress.IPv4Network((base, net.prefixlen - 96))
    return net


def _forms(address: Address) -> tuple[Address, ...]:
    """An IPv4 address and its mapped IPv6 spelling are one client."""
    if isinstance(address, ipaddress.IPv4Address):
        return address, ipaddress.IPv6Address(f"::ffff:{address}")
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, address
    return (address,)


@dataclass(frozen=True)
class AllowList:
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        networks: list[Network] = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            try:
                net = ipaddress.ip_network(part)
            except ValueError as exc:
                raise BadValue(f"not a CIDR ({exc})", part) from None
            networks.append(_unmapped_network(net))
        if not networks:
            raise BadValue("no CIDR given", text)
        return cls(tuple(networks))

    def allows(self, address: str) -> bool:
        """Whether `address` (an IP address as text, a scope id allowed) is
        in one of the networks; anything that is not an address is not."""
        try:
            forms = _forms(ipaddress.ip_address(address.partition("%")[0]))
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net
                   for ip in forms for net in self.networks)

    def __str__(self) -> str:
        return ",".join(str(n) for n in self.networks)
