"""An in-process cache of DNS outcomes that honours each answer's TTL.

The seed advised running a caching name server next to the mail server;
this is that cache, built in. Positive answers live for their TTL, negative
ones (NXDOMAIN, no data) for the zone's negative TTL (RFC 2308).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# Bounds that protect us from zero or absurd TTLs.
MIN_TTL = 5
MAX_TTL = 86400
MAX_ENTRIES = 10000


@dataclass(frozen=True, slots=True)
class CacheEntry(Generic[T]):
    """One cached outcome: a value, or the error to raise again."""

    expires: float
    value: T | None
    error: Exception | None


class TtlCache(Generic[T]):
    """A dictionary whose entries expire by an injectable clock."""

    def __init__(self, clock: Callable[[], float], max_entries: int = MAX_ENTRIES) -> None:
        self._clock = clock
        self._max = max_entries
        self._data: dict[tuple[str, str], CacheEntry[T]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> CacheEntry[T] | None:
        """The live entry for key, or None when absent or expired."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry.expires <= self._clock():
                del self._data[key]
                return None
            return entry

    def put_value(self, key: tuple[str, str], value: T, ttl: float) -> None:
        self._put(key, CacheEntry(self._expiry(ttl), value, None))

    def put_error(self, key: tuple[str, str], error: Exception, ttl: float) -> None:
        self._put(key, CacheEntry(self._expiry(ttl), None, error))

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def _expiry(self, ttl: float) -> float:
        return self._clock() + min(max(ttl, MIN_TTL), MAX_TTL)

    def _put(self, key: tuple[str, str], entry: CacheEntry[T]) -> None:
        with self._lock:
            if len(self._data) >= self._max:
                self._evict()
            self._data[key] = entry

    def _evict(self) -> None:
        # Drop the expired entries, then the oldest half if still full.
        now = self._clock()
        for key in [k for k, e in self._data.items() if e.expires <= now]:
            del self._data[key]
        if len(self._data) >= self._max:
            ordered = sorted(self._data, key=lambda k: self._data[k].expires)
            for key in ordered[: len(ordered) // 2]:
                del self._data[key]
