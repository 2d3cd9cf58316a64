"""Connection limits a listener keeps: in all, and per client address.

One client address (an IPv6 /64, as the login throttle counts it) may hold
`per_client` connections and the listener `total`; loopback is not limited
per address (local tools and webmail). The listener asks `admit(ip)` when a
connection arrives, answers the refusal with its protocol's words and closes,
or counts the connection with `add` until `remove`.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from nmail.directory.throttle import ip_key

Refusal = Literal["busy", "client"]


class ConnectionLimits:
    """Counts of open connections, in all and per client address."""

    def __init__(self, total: int, per_client: int) -> None:
        self._total = total
        self._per_client = per_client
        self._open: dict[object, str] = {}
        self._by_client: dict[str, int] = {}

    def admit(self, ip: str) -> Refusal | None:
        """None to serve a new connection from `ip`; else why not."""
        if len(self._open) >= self._total:
            return "busy"
        if self._by_client.get(ip_key(ip), 0) >= self._per_client and not _loopback(ip):
            return "client"
        return None

    def add(self, connection: object, ip: str) -> None:
        if connection in self._open:
            return
        key = self._open[connection] = ip_key(ip)
        self._by_client[key] = self._by_client.get(key, 0) + 1

    def remove(self, connection: object) -> None:
        """Forget a connection (once; a connection never added is ignored)."""
        key = self._open.pop(connection, None)
        if key is None:
            return
        left = self._by_client.get(key, 1) - 1
        if left > 0:
            self._by_client[key] = left
        else:
            self._by_client.pop(key, None)


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False
