"""The conversation list of a folder: one row per thread, newest first, paged.

A page is a walk of `ix_folder_threads_latest` (folder_threads, kept by every
write: thread_index.refresh), LIMIT/OFFSET on top, then one query through
`ix_messages_thread` for the page's threads' messages in this folder (their
count, unread count, senders and newest message). So the first page of a
100,000-message folder reads 50 index entries and the page's messages, not
the folder (bench/mailstore.py "conversations").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from nmail.db.tables import folder_threads, folders, messages, thread_links
from nmail.mailstore.folder_reads import ROW_COLUMNS, message_row
from nmail.mailstore.model import MessageRow
from nmail.mailstore.names import SEEN_BIT, SYSTEM_BITS
from nmail.mailstore.thread_index import PREFIX_LENGTH
from nmail.mime.threads import KEY_LENGTH

FLAGGED_BIT = SYSTEM_BITS["\\Flagged"]
MAX_THREAD_ROWS = 1000  # messages of one conversation read for a page or a thread view
MAX_PARTICIPANTS = 4  # the last senders of a conversation its row names


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation of a folder: its newest message and what the list shows."""

    thread_id: str
    latest: MessageRow  # the newest message (subject, date, preview of the row)
    count: int  # messages of the thread in this folder
    unseen: int
    flagged: bool
    has_attachments: bool
    participants: tuple[str, ...]  # senders' names (or addresses), oldest first, distinct
    uids: tuple[int, ...]  # the thread's UIDs in this folder (what an action applies to)


def conversation_count(conn: Connection, folder_id: int) -> int:
    """How many conversations have messages in the folder."""
    return int(conn.execute(select(func.count()).select_from(folder_threads).where(
        folder_threads.c.folder_id == folder_id)).scalar_one())


def conversation_page(conn: Connection, folder_id: int, offset: int,
                      limit: int) -> list[Conversation]:
    """One page of the folder's conversations, the most recently active first."""
    ft, m = folder_threads.c, messages.c
    ids = [str(r[0]) for r in conn.execute(
        select(ft.thread_id).where(ft.folder_id == folder_id)
        .order_by(ft.latest_date.desc(), ft.thread_id.desc()).limit(limit).offset(offset))]
    if not ids:
        return []
    # The page's messages, few columns (counts, senders, which is newest). No
    # ORDER BY: with one, SQLite walks ix_messages_folder_date over the whole
    # folder (measured: 0.7 s at 100,000) instead of ix_messages_thread per thread.
    found = conn.execute(
        select(m.thread_id, m.date, m.uid, m.sysflags, m.from_name, m.from_addr,
               m.has_attachments)
        .where(m.folder_id == folder_id, m.thread_id.in_(ids))
    ).all()
    by_thread: dict[str, list[Any]] = {tid: [] for tid in ids}
    for r in sorted(found, key=lambda r: (int(r.date), int(r.uid))):
        by_thread[str(r.thread_id)].append(r)
    newest = {int(rows[-1].uid) for rows in by_thread.values() if rows}
    latest = {row.uid: row for row in map(message_row, conn.execute(
        select(*ROW_COLUMNS).where(m.folder_id == folder_id, m.uid.in_(sorted(newest)))))}
    return [_conversation(tid, rows, latest[int(rows[-1].uid)])
            for tid, rows in by_thread.items() if rows and int(rows[-1].uid) in latest]


def _conversation(thread_id: str, rows: list[Any], latest: MessageRow) -> Conversation:
    names: list[str] = []
    for row in rows:
        name = row.from_name or row.from_addr
        if name and name not in names:
            names.append(name)
    return Conversation(
        thread_id=thread_id, latest=latest, count=len(rows),
        unseen=sum(1 for r in rows if not int(r.sysflags) & SEEN_BIT),
        flagged=any(int(r.sysflags) & FLAGGED_BIT for r in rows),
        has_attachments=any(bool(r.has_attachments) for r in rows),
        participants=tuple(names[-MAX_PARTICIPANTS:]),
        uids=tuple(int(r.uid) for r in rows),
    )


def thread_messages(conn: Connection, folder_id: int, thread_id: str) -> list[MessageRow]:
    """Every message of one conversation in this folder, oldest first (at most 1,000)."""
    rows = conn.execute(
        select(*ROW_COLUMNS).where(messages.c.folder_id == folder_id,
                                   messages.c.thread_id == thread_id)
        .order_by(messages.c.date, messages.c.uid).limit(MAX_THREAD_ROWS)
    ).all()
    return [message_row(r) for r in rows]


# Folders whose messages a conversation screen does not gather from elsewhere.
_NOT_GATHERED = ("\\Trash", "\\Junk", "\\Drafts")


def account_thread_messages(conn: Connection, account_id: int, thread_id: str
                            ) -> list[tuple[int, MessageRow]]:
    """(folder id, message) of one conversation in every folder of the account but
    Trash, Spam and Drafts, oldest first (at most 1,000): what the conversation
    screen shows around a folder's part, as Gmail shows your replies from Sent."""
    m, f = messages.c, folders.c
    gathered = select(f.id).where(f.account_id == account_id,
                                  f.role.is_(None) | f.role.not_in(_NOT_GATHERED))
    rows = conn.execute(
        select(*ROW_COLUMNS, m.folder_id).where(m.folder_id.in_(gathered),
                                                m.thread_id == thread_id)
        .limit(MAX_THREAD_ROWS)
    ).all()
    ordered = sorted(rows, key=lambda r: (int(r.date), int(r.folder_id), int(r.uid)))
    width = len(ROW_COLUMNS)  # message_row unpacks exactly ROW_COLUMNS, by position
    return [(int(r.folder_id), message_row(tuple(r)[:width])) for r in ordered]


_ID_LENGTHS = (KEY_LENGTH, KEY_LENGTH + 8, KEY_LENGTH + PREFIX_LENGTH)


def merged_thread_id(conn: Connection, account_id: int, thread_id: str) -> str | None:
    """The conversation an old thread id of this account now belongs to, or None.

    A thread is named by a key it links (its root's, after the time it began:
    thread_index.plan), and a
    merge renames the loser's links to the winner (thread_index._merge), so the
    loser's name still finds, in `thread_links`, the conversation it went into:
    one primary-key read, nothing kept for the purpose. Only this account's
    links are read: another account's id finds nothing here, as it finds no
    messages.
    """
    # An id's forms exactly, lower-case hex: the root's key alone (16 digits, ids made
    # before the time prefix), the second it began and the root's key (8 + 16, ids
    # made on 2026-12-07), or the time it began to 1/65,536 s and the key (12 + 16;
    # thread_index.new_thread_prefix). MariaDB's collation would find a key by its
    # upper-case spelling or with a trailing space too.
    if len(thread_id) not in _ID_LENGTHS or thread_id.strip(
            "0123456789abcdef"):
        return None
    t = thread_links.c
    found = conn.execute(select(t.thread_id).where(
        t.account_id == account_id, t.link_key == thread_id[-KEY_LENGTH:])).scalar_one_or_none()
    return str(found) if found is not None and str(found) != thread_id else None
