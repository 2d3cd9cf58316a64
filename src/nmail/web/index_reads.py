"""Read-only index queries the mailbox API does not offer: rows by folder id, threads.

List rows of UIDs already known to be the user's (the folder id was checked
against the account first), and the UIDs of the conversations some UIDs are
in (what an action on a conversation row applies to). Nothing here writes.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from nmail.db.tables import messages
from nmail.mailstore.folder_reads import ROW_COLUMNS, message_row
from nmail.mailstore.model import MessageRow


def rows_by_uid(conn: Connection, folder_id: int, uids: list[int]) -> list[MessageRow]:
    out: list[MessageRow] = []
    for start in range(0, len(uids), 500):
        chunk = uids[start:start + 500]
        out.extend(message_row(r) for r in conn.execute(
            select(*ROW_COLUMNS).where(messages.c.folder_id == folder_id,
                                        messages.c.uid.in_(chunk))
        ).all())
    return out


def thread_uids(conn: Connection, folder_id: int, uids: list[int]) -> list[int]:
    """The folder's UIDs in the same conversations as `uids` (ix_messages_thread)."""
    threads: set[str] = set()
    for start in range(0, len(uids), 500):
        threads.update(str(r[0]) for r in conn.execute(
            select(messages.c.thread_id).where(messages.c.folder_id == folder_id,
                                               messages.c.uid.in_(uids[start:start + 500]))))
    wanted = sorted(threads)
    out: set[int] = set()
    for start in range(0, len(wanted), 500):
        out.update(int(r[0]) for r in conn.execute(
            select(messages.c.uid).where(messages.c.folder_id == folder_id,
                                         messages.c.thread_id.in_(wanted[start:start + 500]))))
    return sorted(out)
