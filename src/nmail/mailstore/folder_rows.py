"""Creating the rows of empty folders (a new account) in one transaction.

Folders that already hold message files go through `folder_sync` instead, so
their files are indexed with the UIDs they carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Connection, select

from nmail.db.tables import folders
from nmail.mailstore.folder_sync import new_uidvalidity
from nmail.mailstore.layout import UidState, read_uid_state, write_uid_state
from nmail.mailstore.model import DEFAULT_ROLES
from nmail.mailstore.write_lock import write_transaction


def create_empty_folders(
    conn: Connection, account_id: int, wanted: Sequence[tuple[str, Path]], now: float
) -> None:
    """Insert the rows of `wanted` folders that have none; write `nmail-uidvalidity`."""
    states: dict[str, UidState] = {}
    with write_transaction(conn):
        existing = {
            str(name): UidState(int(validity), int(next_uid))
            for name, validity, next_uid in conn.execute(
                select(folders.c.name, folders.c.uidvalidity, folders.c.next_uid)
                .where(folders.c.account_id == account_id)
                .with_for_update()
            )
        }
        rows = []
        for name, path in wanted:
            if name in existing:
                states[name] = existing[name]
                continue
            # A file left from a lost index keeps its UIDVALIDITY and UID floor.
            state = read_uid_state(path) or UidState(new_uidvalidity(now), 1)
            states[name] = state
            rows.append({
                "account_id": account_id, "name": name, "uidvalidity": state.uidvalidity,
                "next_uid": state.next_uid, "highest_modseq": 1, "names_modseq": 1,
                "message_count": 0,
                "total_size": 0, "unseen_count": 0, "subscribed": True,
                "role": DEFAULT_ROLES.get(name),
            })
        if rows:
            conn.execute(folders.insert(), rows)
    for name, path in wanted:
        state = states[name]
        on_disk = read_uid_state(path)
        if on_disk is None or on_disk.uidvalidity != state.uidvalidity:
            # Not fsync'd: the folders are empty, so losing this file together with
            # the index costs nothing; later syncs and expunges write it durably.
            write_uid_state(path, state, durable=False)
