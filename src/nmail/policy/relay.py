"""Relay control: who may send mail to domains we do not host."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from nmail.policy.decision import ACCEPT, Decision

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# When the admin listed no relay network, only this machine may relay.
DEFAULT_RELAY_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
RELAY_DENIED = Decision(554, "5.7.1", "Relay denied")


def parse_networks(cidrs: Iterable[str | Network]) -> tuple[Network, ...]:
    """Networks from CIDR strings (host bits allowed: '10.1.2.3/8' means 10/8)."""
    return tuple(
        c if not isinstance(c, str) else ipaddress.ip_network(c.strip(), strict=False)
        for c in cidrs
    )


def ip_in_networks(ip: str, networks: Iterable[str | Network]) -> bool:
    """Whether `ip` is in one of `networks`; IPv4-mapped IPv6 counts as IPv4."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in parse_networks(networks))


def check_relay(
    *, client_ip: str, authenticated: bool, relay_networks: Iterable[str | Network]
) -> Decision:
    """Mail for a domain we do not host: allowed when authenticated or from a relay network."""
    if authenticated:
        return ACCEPT
    networks = parse_networks(relay_networks) or DEFAULT_RELAY_NETWORKS
    if ip_in_networks(client_ip, networks):
        return ACCEPT
    return RELAY_DENIED
