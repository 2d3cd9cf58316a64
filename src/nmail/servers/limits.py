"""Connection limits a listener keeps: in all, and per client address.

One client address (an IPv6 /64, as the login throttle counts it) may hold
`per_client` connections and the listener `total`; loopback is not limited
per address (local tools and webmail). The listener asks `admit(ip)` when a
connection arrives, answers the refusal with its protocol's words and closes,
or counts the connection with `add` until `remove`.

With several worker processes on one listener (`nmail serve --workers N`)
the counts live in `SharedCounts`, memory the supervisor maps before it
forks: one row per worker, written only by that worker, read as the sum of
all rows, so the limits hold for the listener as a whole. Addresses are
counted in 4,096 buckets (a keyed hash, unguessable from outside), and a
worker that starts clears its row (what a dead predecessor counted died
with its connections).
"""

from __future__ import annotations

import ipaddress
import logging
import mmap
import secrets
import time
import zlib
from typing import Literal

from nmail.directory.throttle import ip_key

Refusal = Literal["busy", "client"]


class SharedCounts:
    """Open-connection counts of one listener across its worker processes."""

    BUCKETS = 4096

    def __init__(self, workers: int) -> None:
        self._rows = workers
        self._stride = 1 + self.BUCKETS  # the row's total, then its buckets
        # MAP_SHARED and anonymous: the same pages in every process forked later.
        self._map = mmap.mmap(-1, workers * self._stride * 4)
        self._cells = memoryview(self._map).cast("I")
        self._seed = zlib.crc32(secrets.token_bytes(16))  # keys the bucket hash
        # Each connection asks for its address's bucket three times (admit, add,
        # remove), and the same clients come back: kept, ~1k instructions each.
        self._buckets: dict[str, int] = {}

    def row(self, worker: int) -> SharedRow:
        """The counts `worker` keeps, cleared (call it in the worker as it starts)."""
        if not 0 <= worker < self._rows:
            raise ValueError(f"no worker {worker} among {self._rows}")
        start = worker * self._stride * 4
        self._map[start : start + self._stride * 4] = bytes(self._stride * 4)
        return SharedRow(self, worker * self._stride)

    def bucket(self, key: str) -> int:
        found = self._buckets.get(key)
        if found is None:
            found = 1 + zlib.crc32(key.encode(), self._seed) % self.BUCKETS
            if len(self._buckets) >= self.BUCKETS:
                self._buckets.clear()
            self._buckets[key] = found
        return found

    def total(self, offset: int = 0) -> int:
        """The sum over every worker's row of the cell at `offset` (0: all connections).

        One strided view of the cells summed in C: a generator over the rows
        cost ~1.5k instructions more a call, two calls a connection."""
        return sum(self._cells[offset :: self._stride])


class SharedRow:
    """One worker's row of SharedCounts."""

    def __init__(self, counts: SharedCounts, base: int) -> None:
        self.counts = counts
        self._base = base

    def change(self, bucket: int, delta: int) -> None:
        cells, base = self.counts._cells, self._base
        for cell in (base, base + bucket):
            cells[cell] = max(cells[cell] + delta, 0)


class ConnectionLimits:
    """Counts of open connections, in all and per client address.

    `shared`: this process's row of the listener's SharedCounts; the limits
    then count every worker's connections.
    """

    def __init__(self, total: int, per_client: int, shared: SharedRow | None = None) -> None:
        self._total = total
        self._per_client = per_client
        self._shared = shared
        self._open: dict[object, str] = {}
        self._by_client: dict[str, int] = {}

    def admit(self, ip: str) -> Refusal | None:
        """None to serve a new connection from `ip`; else why not."""
        key = ip_key(ip)
        shared = self._shared
        if shared is None:
            open_now, from_client = len(self._open), self._by_client.get(key, 0)
        else:
            counts = shared.counts
            open_now, from_client = counts.total(), counts.total(counts.bucket(key))
        if open_now >= self._total:
            return "busy"
        if from_client >= self._per_client and not _loopback(ip):
            return "client"
        return None

    def add(self, connection: object, ip: str) -> None:
        if connection in self._open:
            return
        key = self._open[connection] = ip_key(ip)
        self._by_client[key] = self._by_client.get(key, 0) + 1
        if self._shared is not None:
            self._shared.change(self._shared.counts.bucket(key), 1)

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
        if self._shared is not None:
            self._shared.change(self._shared.counts.bucket(key), -1)


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class RefusalLog:
    """One log line when a listener refuses a connection over its limits, and
    then at most one every `interval` seconds (counting the ones in between),
    so a flood of refused connections cannot flood the log too."""

    def __init__(self, logger: logging.Logger, listener: str, interval: float = 10.0) -> None:
        self._log = logger
        self._listener = listener
        self._interval = interval
        self._next = 0.0
        self._unlogged = 0

    def refused(self, ip: str, why: Refusal) -> None:
        self._unlogged += 1
        now = time.monotonic()
        if now < self._next:
            return
        what = "the listener's connection limit" if why == "busy" else "the per-address limit"
        self._log.warning(
            "%s: connection from %s refused: %s reached (%d refused since the last report)",
            self._listener,
            ip,
            what,
            self._unlogged,
        )
        self._unlogged = 0
        self._next = now + self._interval
