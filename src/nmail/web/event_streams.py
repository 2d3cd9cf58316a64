"""The /events streams open in this web process: how many per account, and
an Event per stream that is set when this process ends its session.

One place for both, so the route counts and the facade's logout and
"sign out other sessions" reach the streams without either knowing the
other's bookkeeping (routes/events.py says why streams are capped and
when they end).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class OpenStreams:
    def __init__(self) -> None:
        self._counts: dict[int, int] = {}  # account id -> open streams
        # session id -> (account id, one Event per open stream)
        self._ends: dict[str, tuple[int, set[asyncio.Event]]] = {}

    def count(self, account_id: int) -> int:
        return self._counts.get(account_id, 0)

    def open(self, account_id: int, session_id: str) -> asyncio.Event:
        """Count a stream; its Event is set when this process ends the session."""
        self._counts[account_id] = self.count(account_id) + 1
        ended = asyncio.Event()
        self._ends.setdefault(session_id, (account_id, set()))[1].add(ended)
        return ended

    def close(self, account_id: int, session_id: str, ended: asyncio.Event) -> None:
        """Give the stream's place back (however it ended)."""
        left = self.count(account_id) - 1
        if left > 0:
            self._counts[account_id] = left
        else:
            self._counts.pop(account_id, None)
        entry = self._ends.get(session_id)
        if entry is not None:
            entry[1].discard(ended)
            if not entry[1]:
                del self._ends[session_id]

    def end_session(self, session_id: str) -> None:
        self._end(lambda sid, _account: sid == session_id)

    def end_account(self, account_id: int, keep: str) -> None:
        """Every session of the account but `keep` ended."""
        self._end(lambda sid, account: account == account_id and sid != keep)

    def _end(self, which: Callable[[str, int], bool]) -> None:
        for session_id, (account_id, events) in self._ends.items():
            if which(session_id, account_id):
                for ended in events:
                    ended.set()
