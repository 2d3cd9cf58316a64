"""Login throttling shared by SMTP AUTH, POP3 (and IMAP) and the webmail.

Failures are counted per client IP (IPv6 per /64, since one host owns the
whole prefix) and per account. After each failure the next answer to that
IP or account is delayed twice as long as the last (1, 2, 4, 8, 16, 16...
seconds); after `max_failures` failures within `window` seconds the IP or
account is locked out for `lockout` seconds. `nmail serve` keeps the counts
in SQL (throttle_store), so every worker process and node sees the same
ones; elsewhere (tests, tools) they can live in memory.

A login counts its attempt *before* the password is checked (`attempt`),
in one atomic read-and-write of each record, and a right password takes it
back (`success`): the account's record is forgotten, but the client
address's record loses only that one attempt. Forgetting the address's
other failures let one known account reset the per-address count every few
guesses, so one address could spray every other account. Counting after
the check let parallel guesses all read the same count and all be tried:
twenty at once got twenty tries where the limit is ten. Now the eleventh
finds the lockout whatever the timing.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ThrottleVerdict:
    """What to do with a login attempt before checking its password.

    locked: refuse at once without checking (a temporary error); `wait`
            is then the time left in the lockout.
    wait:   otherwise, seconds to hold the answer back (0.0: answer now).
    """

    wait: float
    locked: bool = False
    # Set by attempt(): it was counted (success() takes it back), and the
    # records whose lockout this very attempt started.
    counted: bool = False
    lockouts_started: tuple[str, ...] = ()
    # The throttle's clock when the attempt was counted (success() refunds it).
    counted_at: float = 0.0


OPEN = ThrottleVerdict(0.0)


@dataclass(slots=True)
class Record:
    """One IP's or account's recent failures (times from the throttle's clock)."""

    failures: deque[float] = field(default_factory=deque)
    last_failure: float = 0.0
    locked_until: float = 0.0


RecordChange = Callable[[Record | None], Record | None]


class ThrottleRecords(Protocol):
    """Where the records live: this process's memory, or SQL shared by every process."""

    def get(self, key: str) -> Record | None: ...

    def update(self, key: str, change: RecordChange, now: float) -> Record | None:
        """Apply `change` to the record atomically (None from it drops the record);
        no other process or thread reads or writes the record in between."""
        ...

    def __len__(self) -> int: ...


class MemoryRecords:
    """Records in a bounded dict (least recently failing forgotten first)."""

    def __init__(self, window: float, max_entries: int = 100_000) -> None:
        self._window = window
        self._max_entries = max_entries
        self._records: OrderedDict[str, Record] = OrderedDict()

    def get(self, key: str) -> Record | None:
        return self._records.get(key)

    def put(self, key: str, record: Record, now: float) -> None:
        if key in self._records:
            self._records.move_to_end(key)
        else:
            self._make_room(now)
        self._records[key] = record

    def drop(self, key: str) -> None:
        self._records.pop(key, None)

    def update(self, key: str, change: RecordChange, now: float) -> Record | None:
        # Atomic because LoginThrottle calls it under its own lock.
        new = change(self._records.get(key))
        if new is None:
            self.drop(key)
        else:
            self.put(key, new, now)
        return new

    def _make_room(self, now: float) -> None:
        if len(self._records) < self._max_entries:
            return
        stale = [
            key
            for key, record in self._records.items()
            if record.locked_until <= now and record.last_failure <= now - self._window
        ]
        for key in stale:
            del self._records[key]
        # Still full: forget the least recently failing entries.
        while len(self._records) >= self._max_entries:
            self._records.popitem(last=False)

    def __len__(self) -> int:
        return len(self._records)


class LoginThrottle:
    """Failure counts with exponential delays and lockouts; thread-safe.

    `records` defaults to this process's memory; `throttle_store.SqlRecords`
    shares them between the worker processes of `nmail serve` and its nodes.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        first_delay: float = 1.0,
        max_delay: float = 16.0,
        max_failures: int = 10,
        window: float = 15 * 60.0,
        lockout: float = 15 * 60.0,
        max_entries: int = 100_000,
        records: ThrottleRecords | None = None,
    ) -> None:
        if max_failures < 1 or first_delay < 0 or max_delay < first_delay:
            raise ValueError("bad throttle settings")
        self._clock = clock
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._max_failures = max_failures
        self._window = window
        self._lockout = lockout
        self._records = records if records is not None else MemoryRecords(window, max_entries)
        self._lock = threading.Lock()

    def check(self, ip: str, account: str | None) -> ThrottleVerdict:
        """How long to wait before answering this attempt, or that it is locked out."""
        now = self._clock()
        wait = 0.0
        locked = False
        with self._lock:
            for key in _keys(ip, account):
                record = self._records.get(key)
                if record is None:
                    continue
                self._prune(record, now)
                if record.locked_until > now:
                    locked = True
                    wait = max(wait, record.locked_until - now)
                elif record.failures and not locked:
                    due = record.last_failure + self._delay(len(record.failures))
                    wait = max(wait, due - now)
        return ThrottleVerdict(max(wait, 0.0), locked)

    def attempt(self, ip: str, account: str | None) -> ThrottleVerdict:
        """Count a login attempt before its password is checked.

        Locked: refuse it untested (nothing is counted). Otherwise the attempt
        is counted as a failure at once, and `wait` is how long to hold back
        its answer should the password be wrong; a right password calls
        `success(..., verdict)`, which takes the count back.
        """
        before = self.check(ip, account)
        if before.locked:
            return before
        now = self._clock()
        wait = 0.0
        locked = False
        started: list[str] = []
        with self._lock:
            for key in _keys(ip, account):
                events: list[str] = []
                counted = self._records.update(
                    key, functools.partial(self._count, now=now, events=events), now
                )
                assert counted is not None
                if events and events[-1] == "locked":
                    locked = True  # another thread or process locked it meanwhile
                elif events and events[-1] == "started":
                    # This attempt started the lockout: still tried, answered late.
                    started.append(key)
                    wait = max(wait, self._max_delay)
                else:
                    wait = max(wait, self._delay(len(counted.failures)))
        if locked:
            return ThrottleVerdict(self._max_delay, True)
        return ThrottleVerdict(
            wait, False, counted=True, lockouts_started=tuple(started), counted_at=now
        )

    def failure(self, ip: str, account: str | None) -> None:
        """Record a failed login from `ip` for `account` (one not counted by attempt())."""
        now = self._clock()
        with self._lock:
            for key in _keys(ip, account):
                self._records.update(key, functools.partial(self._count, now=now, events=[]), now)

    def _count(self, record: Record | None, now: float, events: list[str]) -> Record:
        """The record with one more failure; says in `events` if it was or became locked."""
        record = record if record is not None else Record()
        self._prune(record, now)
        if record.locked_until > now:
            events.append("locked")  # locked meanwhile: the lockout is the count
            return record
        record.failures.append(now)
        record.last_failure = now
        if len(record.failures) >= self._max_failures:
            record.locked_until = now + self._lockout
            # The lockout is the penalty; afterwards counting starts over.
            record.failures.clear()
            events.append("started")
        else:
            events.append("counted")
        return record

    def success(
        self, ip: str, account: str | None, attempt: ThrottleVerdict | None = None
    ) -> None:
        """After a good login: forget the account's failures, and take back the
        IP's count of this attempt only (`attempt`, from attempt()); the IP's
        other failures stand, whoever they tried.

        A lockout stands (callers refuse locked attempts before checking the
        password), except one that `attempt` itself started.
        """
        now = self._clock()
        started = () if attempt is None else attempt.lockouts_started
        with self._lock:
            key = ip_key(ip)
            if attempt is not None and attempt.counted:
                refund = functools.partial(
                    self._refund, now=now, at=attempt.counted_at, lift_lockout=key in started
                )
                self._records.update(key, refund, now)
            if account:
                key = account_key(account)
                self._records.update(
                    key, functools.partial(_forget, now=now, lift_lockout=key in started), now
                )

    def untried(self, ip: str, account: str | None, attempt: ThrottleVerdict) -> None:
        """Take back the count of an attempt that was never checked (the password
        gate was full): it taught its sender nothing, so it must not bring a
        lockout nearer, on the address or on the account. Only a lockout this
        attempt's own count started is lifted (it stands one short of the limit
        again); every other count and lockout stands."""
        if not attempt.counted:
            return
        now = self._clock()
        with self._lock:
            for key in _keys(ip, account):
                refund = functools.partial(
                    self._refund, now=now, at=attempt.counted_at,
                    lift_lockout=key in attempt.lockouts_started,
                )
                self._records.update(key, refund, now)

    def _refund(
        self, record: Record | None, *, now: float, at: float, lift_lockout: bool
    ) -> Record | None:
        """The record without the one failure counted at `at`."""
        if record is None:
            return None
        if lift_lockout and record.locked_until > now:
            # This attempt's count started the lockout (and cleared the count):
            # without it the address stands one short of the limit.
            record.locked_until = 0.0
            record.failures = deque([at] * (self._max_failures - 1))
            record.last_failure = at
            return record
        self._prune(record, now)
        if record.failures:
            # Times may have been rounded to milliseconds by the store.
            nearest = min(range(len(record.failures)), key=lambda i: abs(record.failures[i] - at))
            if abs(record.failures[nearest] - at) <= 0.002:
                del record.failures[nearest]
        if record.failures:
            record.last_failure = max(record.failures)
        elif record.locked_until <= now:
            return None
        return record

    def _delay(self, failures: int) -> float:
        doubled: float = self._first_delay * float(2 ** min(failures - 1, 30))
        return min(doubled, self._max_delay)

    def _prune(self, record: Record, now: float) -> None:
        while record.failures and record.failures[0] <= now - self._window:
            record.failures.popleft()

    def __len__(self) -> int:
        return len(self._records)


def _forget(record: Record | None, *, now: float, lift_lockout: bool) -> Record | None:
    """Nothing (the record goes), unless it holds a lockout that stands."""
    if record is None or record.locked_until <= now or lift_lockout:
        return None
    return record


def _keys(ip: str, account: str | None) -> Iterator[str]:
    yield ip_key(ip)
    if account:
        yield account_key(account)


def account_key(account: str) -> str:
    """The record key of a login name."""
    return "account:" + account.strip().lower()


def ip_key(ip: str) -> str:
    """The record key of a client address (an IPv6 address counts as its /64)."""
    return "ip:" + _ip_part(ip)


@functools.lru_cache(maxsize=4096)  # asked per connection, mostly by the same clients
def _ip_part(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
