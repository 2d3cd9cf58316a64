"""Read-only index queries the mailbox API does not offer: rows by folder id, threads.

List rows of UIDs already known to be the user's (the folder id was checked
against the account first), and the messages of one conversation
(`thread_id`) for the conversation view. Nothing here writes.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

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


def thread_rows(conn: Connection, folder_id: int, thread_id: str) -> list[MessageRow]:
    rows = conn.execute(
        select(*ROW_COLUMNS).where(messages.c.folder_id == folder_id,
                                    messages.c.thread_id == thread_id)
        .order_by(messages.c.date.asc()).limit(500)
    ).all()
    return [message_row(r) for r in rows]


def thread_counts(conn: Connection, folder_id: int, thread_ids: list[str]) -> dict[str, int]:
    """How many messages of the folder each conversation has (ix_messages_thread)."""
    wanted = [t for t in set(thread_ids) if t][:500]
    if not wanted:
        return {}
    rows = conn.execute(
        select(messages.c.thread_id, func.count()).where(
            messages.c.folder_id == folder_id, messages.c.thread_id.in_(wanted))
        .group_by(messages.c.thread_id)
    ).all()
    return {str(r[0]): int(r[1]) for r in rows}
