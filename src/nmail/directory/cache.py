"""Directory answers for the RCPT hot path, from memory while the directory is unchanged.

`DirectoryCache(directory)` keeps what `resolve`, the reject lists, the relay
networks and `sender_addresses` answered, tagged with the directory
generation they were read under. `refresh()` reads the generation (one
primary-key lookup) and forgets everything when it moved, so a change made
by any process or node applies to the next lookup after it, never later.
Lookups with `cached_only=True` never touch the database: they raise
NotCached instead, which lets an event loop answer from memory and hand
only the misses to a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from nmail.directory.errors import InvalidName
from nmail.directory.generation import GenerationReader
from nmail.directory.model import Account, Resolution
from nmail.directory.names import normalize_address, split_address
from nmail.directory.relay import Network
from nmail.directory.service import Directory

K = TypeVar("K")
V = TypeVar("V")

# Entries per kind; past it the oldest go first. Bounds the memory a client
# probing random addresses can make us hold.
MAX_ENTRIES = 20_000


class NotCached(Exception):
    """The answer is not in memory (only raised for cached_only lookups)."""


class DirectoryCache:
    """A per-process memory of directory answers, checked against the generation."""

    def __init__(self, directory: Directory, *, max_entries: int = MAX_ENTRIES) -> None:
        self.directory = directory
        self._reader = GenerationReader(directory.engine)
        self._max = max_entries
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._resolutions: dict[str, Resolution] = {}
        self._rejects: dict[int, frozenset[str]] = {}
        self._senders: dict[str, frozenset[str]] = {}
        self._relay: tuple[Network, ...] | None = None

    @property
    def local(self) -> bool:
        """True when refresh() is a local file read (SQLite): fine on an event loop."""
        return self._reader.local

    def close(self) -> None:
        self._reader.close()

    def refresh(self) -> None:
        """Forget everything if the directory changed since it was remembered."""
        generation = self._reader.read()
        if generation == self._generation:
            return
        with self._lock:
            if generation != self._generation:
                self._resolutions = {}
                self._rejects = {}
                self._senders = {}
                self._relay = None
                self._generation = generation

    # -- lookups (call refresh() first, once per question) -----------------------

    def resolve(self, address: str, *, cached_only: bool = False) -> Resolution:
        """Directory.resolve(address); InvalidName for a bad address (never cached)."""
        found = self._resolutions.get(address)
        if found is not None:
            return found
        if cached_only:
            raise NotCached(address)
        return self._fill(self._resolutions, address, lambda: self.directory.resolve(address))

    def is_rejected(self, account: Account, sender: str, *, cached_only: bool = False) -> bool:
        """Directory.is_rejected(account, sender), from the account's whole list."""
        if not sender:
            return False
        patterns = self._rejects.get(account.id)
        if patterns is None:
            if cached_only:
                raise NotCached(account.address)
            patterns = self._fill(
                self._rejects, account.id, lambda: self.directory.reject_patterns(account.id)
            )
        if not patterns:
            return False  # most lists are empty: no need to parse the sender
        try:
            normal = normalize_address(sender)
        except InvalidName:
            return False
        return normal in patterns or "@" + split_address(normal)[1] in patterns

    def relay_networks(self, *, cached_only: bool = False) -> tuple[Network, ...]:
        """Directory.relay_networks()."""
        found = self._relay
        if found is not None:
            return found
        if cached_only:
            raise NotCached("relay networks")
        generation = self._generation
        networks = self.directory.relay_networks()
        with self._lock:
            if generation == self._generation:
                self._relay = networks
        return networks

    def sender_addresses(self, login: str, *, cached_only: bool = False) -> frozenset[str]:
        """Directory.sender_addresses(login)."""
        found = self._senders.get(login)
        if found is not None:
            return found
        if cached_only:
            raise NotCached(login)
        return self._fill(self._senders, login, lambda: self.directory.sender_addresses(login))

    def _fill(self, table: dict[K, V], key: K, compute: Callable[[], V]) -> V:
        # The generation is taken before the database is read: if a change
        # lands in between, the entry is dropped by the next refresh() anyway;
        # if a refresh() happened meanwhile, the answer is not kept.
        generation = self._generation
        value = compute()
        with self._lock:
            # refresh() swaps in new dicts with a new generation, so an unchanged
            # generation also means `table` is still the live one.
            if generation is not None and generation == self._generation:
                if len(table) >= self._max:
                    table.pop(next(iter(table)))
                table[key] = value
        return value
