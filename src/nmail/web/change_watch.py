"""What the webmail's /events stream waits on: folder state and the change feed.

The stream (routes/events.py) tells an open page when its folders changed.
The truth is each folder's highest MODSEQ, read from the index; the change
feed (mailstore/feed.py) only wakes the wait early, so a lost or repeated
event, or no feed at all, costs a delay and nothing else. Apart from
facade.py (which the routes use for everything else) because this is the
one part of the web process that holds a connection of its own (the feed
subscription) and waits; routes reach it as `web.changes`, and it runs its
reads through the facade's pool (`run`), as SettingsFacade does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nmail.mailstore.feed import AsyncFeed, AsyncSubscription
from nmail.mailstore.feed_wire import feed_address
from nmail.web.backends import WebBackends

log = logging.getLogger("nmail.web.facade")  # the name it logged under inside facade.py
Runner = Callable[..., Awaitable[Any]]


class ChangeWatch:
    def __init__(self, backends: WebBackends, run: Runner) -> None:
        self._b = backends
        self._run = run
        self._feed: AsyncFeed | None = None

    async def folder_state(self, account_id: int) -> dict[int, int]:
        """folder id -> highest MODSEQ: what "nothing changed" is compared with."""
        def read() -> dict[int, int]:
            from sqlalchemy import select

            from nmail.db.tables import folders
            with self._b.engine.connect() as conn:
                rows = conn.execute(select(folders.c.id, folders.c.highest_modseq)
                                    .where(folders.c.account_id == account_id)).all()
            return {int(r.id): int(r.highest_modseq) for r in rows}
        state: dict[int, int] = await self._run(read)
        return state

    async def wait_for_change(self, account_id: int, last: dict[int, int], wait: float,
                              subscription: AsyncSubscription | None) -> dict[int, int] | None:
        """The new folder state once it differs from `last`, or None after `wait` seconds.

        Wakes at once on a change-feed event; the MODSEQ comparison after it
        (and after every quiet `wait`) is the truth, so a lost or repeated
        event, or no feed hub at all (a test's in-process server), changes
        nothing but the delay.
        """
        if subscription is not None:
            await subscription.get(wait)
        else:
            await asyncio.sleep(wait)
        now = await self.folder_state(account_id)
        return now if now != last else None

    async def subscribe(self, account_id: int) -> AsyncSubscription | None:
        """A change-feed subscription for the account (None if the feed cannot be used)."""
        try:
            if self._feed is None:
                self._feed = AsyncFeed(feed_address(self._b.config.data_dir))
            return await self._feed.subscribe(account_id, wait=0)
        except Exception:
            log.exception("change feed subscription failed; polling instead")
            return None

    async def close(self) -> None:
        """Close the feed connection (the app's shutdown)."""
        if self._feed is not None:
            await self._feed.close()
            self._feed = None
