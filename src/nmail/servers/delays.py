"""A delay a server holds a client in, cut short when the server stops.

A failed login's (POP3) and a guessing client's RCPT replies (SMTP) are
waited through an injectable `sleep` (tests pass a recorder, not a clock),
and a stop must not wait for them: they end at once when `stopping` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


async def delay_until_stop(sleep: Sleep, seconds: float, stopping: asyncio.Event) -> None:
    """Wait `seconds` through `sleep`, or until `stopping` is set, whichever is first."""
    waits = [asyncio.ensure_future(sleep(seconds)), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
