"""Senders whose remote images a user always wants shown ("always for this sender").

Stored server-side (table `web_image_senders`), so the choice follows the
user to every browser. The sender is the From address of the message, which
a forger can copy: the choice only spares a click, it never runs anything
(the frame's sandbox and CSP are the same either way).
Blocking; called in the web app's thread pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from nmail.db.web_tables import web_image_senders

MAX_PER_ACCOUNT = 5000


class ImageSenders:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def trusted(self, account_id: int, address: str) -> bool:
        if not address or len(address) > 320:
            return False
        with self._engine.connect() as conn:
            row = conn.execute(
                select(web_image_senders.c.address).where(
                    web_image_senders.c.account_id == account_id,
                    web_image_senders.c.address == address.lower(),
                )
            ).first()
        return row is not None

    def trust(self, account_id: int, address: str) -> bool:
        """Remember the sender; False when the address is unusable or the list is full."""
        address = address.strip().lower()
        if not address or len(address) > 320 or "@" not in address:
            return False
        with self._engine.begin() as conn:
            count = len(conn.execute(
                select(web_image_senders.c.address)
                .where(web_image_senders.c.account_id == account_id)
                .limit(MAX_PER_ACCOUNT)
            ).all())
            if count >= MAX_PER_ACCOUNT:
                return False
            try:
                with conn.begin_nested():
                    conn.execute(insert(web_image_senders).values(
                        account_id=account_id, address=address, created_at=int(self._clock())))
            except IntegrityError:
                pass  # already trusted
        return True

    def forget(self, account_id: int, address: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(web_image_senders).where(
                web_image_senders.c.account_id == account_id,
                web_image_senders.c.address == address.strip().lower(),
            ))
