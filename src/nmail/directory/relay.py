"""Relay networks: client networks allowed to send to any domain without AUTH."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Network, IPv6Network

from sqlalchemy import delete, insert, select

from nmail.db.tables import relay_networks
from nmail.directory.base import DirectoryBase
from nmail.directory.errors import Conflict, InvalidName, NotFound

Network = IPv4Network | IPv6Network


def parse_network(text: str) -> Network:
    """A network from CIDR (10.0.0.0/8), address/netmask (10.0.0.0/255.0.0.0) or one address."""
    spec = text.strip()
    if not spec:
        raise InvalidName("empty network")
    try:
        return ipaddress.ip_network(spec)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(spec, strict=False)
    except ValueError:
        raise InvalidName(
            f"{text!r} is not a network (expected CIDR like 192.168.1.0/24 or an IP address)"
        ) from None
    # Host bits set: say what was probably meant instead of guessing silently.
    raise InvalidName(f"{text!r} has host bits set; did you mean {loose}?")


class RelayMixin(DirectoryBase):
    """Networks trusted to relay."""

    def add_relay_network(self, cidr: str) -> Network:
        """Trust `cidr` to relay; stored in normal form (10.0.0.0/8)."""
        network = parse_network(cidr)
        normal = str(network)
        with self._transaction(f"relay network {normal} already listed") as conn:
            found = conn.execute(
                select(relay_networks.c.id).where(relay_networks.c.cidr == normal)
            ).first()
            if found is not None:
                raise Conflict(f"relay network {normal} already listed")
            conn.execute(insert(relay_networks).values(cidr=normal, created_at=self._now()))
        return network

    def delete_relay_network(self, cidr: str) -> None:
        """Stop trusting `cidr`."""
        normal = str(parse_network(cidr))
        with self._transaction(f"relay network {normal} changed meanwhile") as conn:
            result = conn.execute(delete(relay_networks).where(relay_networks.c.cidr == normal))
            if result.rowcount == 0:
                raise NotFound(f"no such relay network: {normal}")

    def relay_networks(self) -> tuple[Network, ...]:
        """The listed networks (empty means loopback only; the policy adds loopback)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(relay_networks.c.cidr).order_by(relay_networks.c.id))
            found = [ipaddress.ip_network(str(r.cidr)) for r in rows]
        # IPv4 first, then by address, so listings read naturally.
        return tuple(sorted(found, key=lambda n: (n.version, n.network_address, n.prefixlen)))
