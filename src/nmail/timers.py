"""Deadlines on an event loop's clock, as a seam a test can hold.

A POP3 session's idle timeout and time limit (servers/pop3_connection.py)
and the SMTP client's reply deadlines (queue/smtp_link.py) read `time()`
and set timers with `call_at`/`call_later`: the running event loop does
both, and is what they use unless given other `Timers`. A test hands in a
clock of its own (tests/manual_timers.py ManualTimers) whose time moves only when
the test moves it: a deadline then passes when the test says so, never
because the test process was stalled for a moment on a loaded machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """A callback set for a time (asyncio.TimerHandle is one)."""

    def when(self) -> float: ...

    def cancel(self) -> None: ...


class Timers(Protocol):
    """A clock and its timers; every asyncio event loop (uvloop's too) is one."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer: ...

    def call_later(self, delay: float, callback: Callable[[], object], /) -> Timer: ...
