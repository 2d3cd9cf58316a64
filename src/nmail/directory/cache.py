"""Directory answers for the RCPT hot path, from memory while the directory is unchanged.

`DirectoryCache(directory)` keeps what `resolve`, the reject lists, the
relay networks, the server and domain administrators and `sender_addresses`
answered, tagged with the directory generation they were read under.
`refresh()` reads the generation (one primary-key lookup) and forgets
everything when it moved, so a change made by any process or node applies to
the next lookup after it, never later. Lookups with `cached_only=True` never
touch the database: they raise NotCached instead, which lets an event loop
answer from memory and hand only the misses to a worker thread.

`refresh(max_age=s)` skips the read when the last one is younger than `s`:
a POP3 session asks at every command whether its account changed, and at
thousands of commands a second one read per command would cost as much as
the commands (about 10 µs on SQLite, against ~20 µs of CPU for a RETR).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from nmail.directory.errors import InvalidName
from nmail.directory.generation import GenerationReader
from nmail.directory.model import Account, Resolution, Standing
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

    def __init__(
        self,
        directory: Directory,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self._reader = GenerationReader(directory.engine)
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._read_at = float("-inf")  # when the last read of the generation began
        self._resolutions: dict[str, Resolution] = {}
        self._rejects: dict[int, frozenset[str]] = {}
        self._senders: dict[str, frozenset[str]] = {}
        self._relay: tuple[Network, ...] | None = None
        self._admins: tuple[Account, ...] | None = None
        self._domain_admins: dict[str, tuple[Account, ...]] = {}

    @property
    def local(self) -> bool:
        """True when refresh() is a local file read (SQLite): fine on an event loop."""
        return self._reader.local

    def close(self) -> None:
        self._reader.close()

    @property
    def generation(self) -> int | None:
        """The directory generation as last read (None before the first refresh)."""
        return self._generation

    def generation_within(self, max_age: float) -> int | None:
        """The generation if it was read less than `max_age` seconds ago, else None."""
        if self._clock() - self._read_at < max_age:
            return self._generation
        return None

    def refresh(self, max_age: float = 0.0) -> None:
        """Forget everything if the directory changed since it was remembered.

        max_age: do nothing when the generation was read less than that many
        seconds ago (a change is then noticed at most max_age late).
        """
        if max_age > 0.0 and self._clock() - self._read_at < max_age:
            return
        # The time before the read: what it returns is at least that recent.
        read_at = self._clock()
        generation = self._reader.read()
        self._read_at = max(self._read_at, read_at)
        if generation == self._generation:
            return
        with self._lock:
            if generation != self._generation:
                self._resolutions = {}
                self._rejects = {}
                self._senders = {}
                self._relay = None
                self._admins = None
                self._domain_admins = {}
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

    def standing(
        self, address: str, account_id: int | None = None, *, cached_only: bool = False
    ) -> Standing:
        """Whether the account logged in as `address` (with this id, when given)
        still exists and may log in."""
        try:
            resolution = self.resolve(address, cached_only=cached_only)
        except InvalidName:
            return Standing.DELETED
        found = [a for a in resolution.accounts if a.address == address]
        if not found:
            return Standing.DELETED
        if account_id is not None and all(a.id != account_id for a in found):
            return Standing.REPLACED
        if not any(a.login_enabled for a in found):
            return Standing.LOGIN_DISABLED
        return Standing.ACTIVE

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

    def server_admins(self, *, cached_only: bool = False) -> tuple[Account, ...]:
        """Directory.server_admins()."""
        found = self._admins
        if found is not None:
            return found
        if cached_only:
            raise NotCached("server administrators")
        generation = self._generation
        admins = self.directory.server_admins()
        with self._lock:
            if generation == self._generation:
                self._admins = admins
        return admins

    def domain_admins(self, domain: str, *, cached_only: bool = False) -> tuple[Account, ...]:
        """Directory.domain_admins(domain)."""
        found = self._domain_admins.get(domain)
        if found is not None:
            return found
        if cached_only:
            raise NotCached(f"administrators of {domain}")
        return self._fill(self._domain_admins, domain, lambda: self.directory.domain_admins(domain))

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
