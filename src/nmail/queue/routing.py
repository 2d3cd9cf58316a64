"""Where mail for a domain goes: transport map, smarthost, or MX.

Order, as Postfix users expect: a `[transport]` entry for the domain (or a
parent given as ".example.com", or "*"), then the `[relay]` smarthost, then
the domain's MX hosts. In a transport entry, brackets mean "this host, no
MX lookup": `smtp:[10.0.0.5]:2525`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from nmail.config import Config, RelayHost
from nmail.dns.errors import permanent
from nmail.dns.resolver import MailResolver, ascii_domain

# TLS policies of a route.
TLS_OPPORTUNISTIC = "may"  # STARTTLS when offered, plaintext otherwise
TLS_REQUIRED = "starttls"  # STARTTLS or nothing (smarthost with a password)
TLS_IMPLICIT = "implicit"  # TLS from the first byte (port 465)
TLS_NONE = "none"


@dataclass(frozen=True, slots=True)
class Nexthop:
    """A parsed transport-map value: a host, whether to look up its MX, a port."""

    host: str
    mx_lookup: bool
    port: int | None


@dataclass(frozen=True, slots=True)
class Route:
    """How to reach the recipients of one destination.

    `hosts` are tried in order; `destination` names what the concurrency
    limits count against (equal routes share connections).
    """

    hosts: tuple[str, ...]
    port: int
    tls: str = TLS_OPPORTUNISTIC
    verify: bool = False
    username: str | None = None
    password: str | None = None

    @property
    def destination(self) -> tuple[object, ...]:
        """Equal for routes that reach the same servers the same way."""
        return (tuple(sorted(self.hosts)), self.port, self.tls, self.verify, self.username)

    @property
    def label(self) -> str:
        return f"{self.hosts[0]}:{self.port}" if self.hosts else "?"


def parse_transport(spec: str) -> Nexthop:
    """'smtp:[10.0.0.5]:2525', 'smtp:mx.example.net', '[10.0.0.5]' -> Nexthop."""
    text = spec.strip()
    if text.lower().startswith("smtp:"):
        text = text[5:]
    if not text:
        raise ValueError(f"transport {spec!r}: missing host")
    port: int | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"transport {spec!r}: missing ']'")
        host, rest, mx_lookup = text[1:end], text[end + 1 :], False
    else:
        host, sep, rest = text.partition(":")
        rest = sep + rest
        mx_lookup = True
    if rest:
        if not rest.startswith(":") or not rest[1:].isdigit() or not 0 < int(rest[1:]) < 65536:
            raise ValueError(f"transport {spec!r}: bad port")
        port = int(rest[1:])
    if not host or any(c in host for c in " /@"):
        raise ValueError(f"transport {spec!r}: bad host {host!r}")
    return Nexthop(host.lower(), mx_lookup, port)


def tls_verify_wanted(names: tuple[str, ...], *candidates: str) -> bool:
    """True when the admin asked to verify certificates for any of `candidates`."""
    wanted = {n.lower().rstrip(".") for n in names}
    return "*" in wanted or any(c.lower() in wanted for c in candidates)


class Router:
    """Turns a recipient domain into a Route."""

    def __init__(self, config: Config, resolver: MailResolver) -> None:
        self._resolver = resolver
        self._hostname = config.hostname
        self._port = config.queue.remote_port
        self._verify = config.queue.tls_verify
        self._relay = config.relay
        self._transport: Mapping[str, Nexthop] = {
            key.lower(): parse_transport(value) for key, value in config.transport.items()
        }

    async def route(self, domain: str) -> Route:
        """The route for `domain`; raises DnsLookupError when it has none."""
        domain = domain.lower()
        nexthop = self._transport_for(domain)
        if nexthop is not None:
            hosts = await self._hosts(nexthop.host, nexthop.mx_lookup)
            return Route(
                hosts, nexthop.port or self._port,
                verify=tls_verify_wanted(self._verify, domain, nexthop.host),
            )
        if self._relay is not None:
            return self._relay_route(self._relay)
        if domain.startswith("[") and domain.endswith("]"):
            return Route((_literal(domain),), self._port, verify=False)
        hosts = await self._hosts(domain, True)
        return Route(hosts, self._port, verify=tls_verify_wanted(self._verify, domain))

    def _transport_for(self, domain: str) -> Nexthop | None:
        if domain in self._transport:
            return self._transport[domain]
        parts = domain.split(".")
        for i in range(1, len(parts)):
            parent = "." + ".".join(parts[i:])
            if parent in self._transport:
                return self._transport[parent]
        return self._transport.get("*")

    def _relay_route(self, relay: RelayHost) -> Route:
        host = relay.host.strip("[]").lower()
        tls = {"starttls": TLS_REQUIRED, "implicit": TLS_IMPLICIT}.get(relay.tls, TLS_NONE)
        # A password goes only to a smarthost whose certificate verified,
        # unless the admin opted out ([relay] verify_certificate = false).
        guard_password = relay.password is not None and relay.verify_certificate
        return Route(
            (host,), relay.port, tls=tls,
            verify=guard_password or tls_verify_wanted(self._verify, host),
            username=relay.user, password=relay.password,
        )

    async def _hosts(self, name: str, mx_lookup: bool) -> tuple[str, ...]:
        if not mx_lookup:
            return (name,)
        hosts = await self._resolver.mail_hosts(name)
        own = self._hostname.lower()
        # An MX pointing at ourselves would loop; RFC 5321 5.1 says drop it
        # and the less preferred ones (we are the relay of last resort then).
        if own in hosts:
            hosts = hosts[: hosts.index(own)]
            if not hosts:
                raise permanent(f"mail for {ascii_domain(name)} loops back to myself", "5.4.6")
        return tuple(hosts)


def _literal(domain: str) -> str:
    inner = domain[1:-1]
    if inner.lower().startswith("ipv6:"):
        inner = inner[5:]
    try:
        return str(ipaddress.ip_address(inner))
    except ValueError:
        raise permanent(f"bad address literal {domain}", "5.1.3") from None
