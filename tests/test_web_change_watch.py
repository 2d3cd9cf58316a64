"""What the webmail's /events stream waits on (web/change_watch.py), on each database.

The stream tells a page its folders changed when the folder state (each
folder's highest MODSEQ) differs from the one it last sent; these are the
reads behind that, without a feed hub (the polling path).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine

from nmail.directory import Directory
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.store import MailStore
from nmail.web.change_watch import ChangeWatch
from serve_setup import PASSWORD


def test_new_mail_changes_the_folder_state_and_quiet_does_not(engine: Engine,
                                                              tmp_path: Path) -> None:
    directory = Directory(engine, passwords=fast_hashing())
    directory.add_domain("example.com")
    bob = directory.add_account("example.com", "Bob", "bob", PASSWORD)
    ann = directory.add_account("example.com", "Ann", "ann", PASSWORD)
    store = MailStore(engine, tmp_path / "mail", "mail.example.com")
    # The two things ChangeWatch reads: the engine, and the data directory (the feed's address).
    backends: Any = SimpleNamespace(engine=engine, config=SimpleNamespace(data_dir=tmp_path))
    watch = ChangeWatch(backends, asyncio.to_thread)

    async def body() -> None:
        last = await watch.folder_state(bob.id)
        assert await watch.wait_for_change(bob.id, last, 0, None) is None
        await asyncio.to_thread(store.append, ann, "INBOX", b"Subject: a\r\n\r\nfor ann\r\n")
        assert await watch.wait_for_change(bob.id, last, 0, None) is None  # not bob's
        stored = await asyncio.to_thread(store.append, bob, "INBOX",
                                         b"Subject: b\r\n\r\nfor bob\r\n")
        now = await watch.wait_for_change(bob.id, last, 0, None)
        assert now is not None
        assert {k for k, v in now.items() if v != last.get(k)} == {stored.folder_id}
        assert await watch.wait_for_change(bob.id, now, 0, None) is None
        await watch.close()  # no feed was opened: nothing to close, no error

    try:
        store.ensure_account(bob)
        store.ensure_account(ann)
        asyncio.run(body())
    finally:
        store.close()
