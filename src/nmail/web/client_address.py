"""The client's real address, also behind a reverse proxy the admin declared.

X-Forwarded-For is believed only from `[web] trusted_proxies`, and read from
the right: each hop a trusted proxy appended is peeled off until the first
address that is not a trusted proxy, which is the client. Anything to its
left was written by the client and is ignored (else a guesser would pick a
fresh "address" per try and escape the login throttle).
"""

from __future__ import annotations

import ipaddress

from nmail.web.web_settings import Network


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 1.2.3.4:5678
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
             proxies: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def real_client(peer: str, forwarded_for: list[str], proxies: tuple[Network, ...]) -> str:
    """The address to throttle and log: `peer` unless it is a trusted proxy."""
    peer_address = _parse(peer)
    if peer_address is None or not proxies or not _trusted(peer_address, proxies):
        return peer
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return str(peer_address)  # garbage in the chain: trust no further
        if not _trusted(address, proxies):
            return str(address)
    return str(peer_address)


def forwarded_tls(peer: str, proto_header: str | None, proxies: tuple[Network, ...]) -> bool:
    """Whether a trusted proxy says the browser used https."""
    peer_address = _parse(peer)
    if peer_address is None or not proxies or not _trusted(peer_address, proxies):
        return False
    return (proto_header or "").split(",")[-1].strip().lower() == "https"
