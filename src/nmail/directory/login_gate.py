"""How many password checks one process runs at once, and how many may wait.

Argon2 with argon2-cffi's defaults takes 64 MiB for each check while it
runs, and the doors ran every check in a thread of the process's pool (32
threads): a flood of wrong logins (unknown users cost the same, a dummy
hash is checked) made the process allocate 64 MiB per check at once, up to
2 GiB. Measured on `nmail serve` (tests/test_login_memory.py): 60 parallel
wrong AUTH PLAINs from 60 addresses grew the worker's peak RSS by 1751 MiB
before this gate, 130 MiB with it (two cores; POP3 USER/PASS: 128 MiB).

Argon2 is CPU bound, so more checks at once than cores gains nothing. The
gate runs at most `checks` (default: the CPUs this process may use) at once,
lets at most `waiting` more wait their turn, first come first served, and
refuses the rest at once (the login service answers "busy", each door its
temporary failure: SMTP 454 4.7.0, POP3 -ERR [SYS/TEMP], web 503 with
Retry-After). A waiting check gives up after `max_wait` seconds.
Refusals are logged once, then at most once every `interval` seconds
with the count in between.

Trade-off: an attacker with many addresses (each under the throttle's
limits) can keep the places full, and then a real user is refused busy
(or waits at most about waiting/checks check times) for as long as the
flood lasts. That is unavoidable for a CPU-bound check; what the gate
prevents is running out of memory, and a real user's wait is bounded,
never an unbounded queue. One address cannot do it alone: the throttle
counts every attempt before it gets here and refuses a locked-out one
without a check.

Blocking (threading): callers already run the login in a thread. A waiting
check holds a pool thread, so checks + waiting is kept to at most half the
pool (16 of 32), leaving the rest for mail.

The sizes and the wait are `[login] concurrent_checks`, `waiting_checks` and
`wait_seconds` (config_login.py checks them against these places); a size
left out takes its default within what the other leaves.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("nmail.login")

MAX_PLACES = 16  # half of the process's pool (runtime.py: 32 threads)


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class PasswordGate:
    """At most `checks` password checks at once, `waiting` more in line; thread-safe."""

    def __init__(
        self,
        checks: int | None = None,
        waiting: int | None = None,
        *,
        max_wait: float = 10.0,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if checks is None:
            # Left to the default: within what a given `waiting` leaves of the places.
            left = MAX_PLACES - max(0, waiting or 0)
            checks = min(usable_cpus(), MAX_PLACES // 2, left)
        self.checks = max(1, checks)
        if waiting is None:
            waiting = min(4 * self.checks, MAX_PLACES - self.checks)
        self.waiting = max(0, waiting)
        self._max_wait = max_wait
        self._interval = interval
        self._clock = clock
        self._cond = threading.Condition()
        self._running = 0
        self._line: deque[object] = deque()
        self._next_log = 0.0
        self._unlogged = 0

    @property
    def max_wait(self) -> float:
        """Seconds a check may wait in line before it is refused."""
        return self._max_wait

    @property
    def running(self) -> int:
        return self._running

    @property
    def in_line(self) -> int:
        return len(self._line)

    def enter(self) -> bool:
        """Wait for a turn to check a password; False (refused, logged) when the
        line is full or the turn did not come within `max_wait`. After True,
        call `leave()` once the check is done."""
        with self._cond:
            if self._running < self.checks and not self._line:
                self._running += 1
                return True
            if len(self._line) >= self.waiting:
                self._refused("full")
                return False
            ticket = object()
            self._line.append(ticket)
            deadline = self._clock() + self._max_wait
            try:
                while not (self._line[0] is ticket and self._running < self.checks):
                    left = deadline - self._clock()
                    if left <= 0:
                        self._refused("waited too long")
                        return False
                    self._cond.wait(left)
                self._running += 1
                return True
            finally:
                self._line.remove(ticket)
                # The next in line may be able to go too (or is now first).
                self._cond.notify_all()

    def leave(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def _refused(self, why: str) -> None:
        """Called with the lock held."""
        self._unlogged += 1
        now = self._clock()
        if now < self._next_log:
            return
        log.warning(
            "password checks: login refused busy (%s): %d checking, %d waiting, "
            "limits %d and %d (%d refused since the last report)",
            why, self._running, len(self._line), self.checks, self.waiting, self._unlogged,
        )
        self._unlogged = 0
        self._next_log = now + self._interval
