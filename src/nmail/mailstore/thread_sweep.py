"""Links of conversations with no message left: dropped with their last message.

`thread_links` maps every msg-id key an account's messages named (their own
Message-ID, In-Reply-To, References) to the conversation they joined
(thread_index.py). Before this, nothing ever removed a link but an account's
deletion: each delivered message left its keys (1 to 12) behind for good,
so on a server whose users read and delete mail the table every delivery
looks its keys up in only grew.

What is kept (docs/ARCHITECTURE.md, "Conversations"): a conversation's
links live as long as it has a message anywhere in the account, Trash and
Spam included, so a reply to a deleted message still joins the messages
that remain (its In-Reply-To names the deleted one, whose key is still
linked); once the last message is expunged, the links go in the same
transaction, and a later reply starts a new conversation. That is Gmail's
behaviour (a reply to a conversation deleted forever starts afresh) and
more than Dovecot keeps (its thread index links only the messages present,
through the references those carry). A link row for nothing is never
needed: a thread id names a conversation by its messages; the merge
redirect (thread_reads.merged_thread_id) needs the winner's links, which
live while the winner has messages.

Where: every write that can remove a conversation's last message calls
`forget_gone` in its own transaction (expunge, a folder's delete, the rows
dbsync and repair drop for files that are gone); moves and copies keep
every message in the account, deliveries only add. The check is one query
per 500 conversations through `ix_messages_thread` (folder, thread) for the
account's folders, and the delete one through `ix_thread_links_thread`:
nothing on the delivery path. An account's deletion takes its links by the
foreign key (ON DELETE CASCADE), as it takes its folders, messages and
conversation rows.

`sweep_account` walks one account's linked conversations in steps of
STEP and drops what earlier versions left: `nmail dbsync` runs it after
reconciling each account's folders, one transaction per step so a running
server's writer waits at most one step. An install upgraded from before
this had its stale links until someone ran `nmail dbsync ALL`: migration
0019 lists the accounts that have links (`thread_link_sweeps`, why a list
and not the sweep itself is written there), and `sweep_pending`, run by
`nmail serve` at start before the index writer and the workers
(runtime.prepare_data), sweeps each listed account the same way, one write
transaction per step; the step that finishes an account removes its row, so
the sweep happens once and a cut-short one resumes where it stopped.

With several nodes (PostgreSQL, MariaDB), a reply committed by another
node at the instant the conversation's last message is expunged may find
the old links, join the conversation, and see them dropped: it stays in
its conversation, linked by its own keys; only a later message naming the
deleted messages alone starts a new one. Nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Connection, Engine, delete, select

from nmail.db.tables import folder_threads, folders, messages, thread_link_sweeps, thread_links
from nmail.mailstore.write_lock import write_transaction

CHUNK = 500  # conversations checked per query
STEP = 2000  # conversations looked at per dbsync transaction


def account_folder_ids(conn: Connection, account_id: int) -> list[int]:
    return [int(r[0]) for r in conn.execute(
        select(folders.c.id).where(folders.c.account_id == account_id))]


def forget_gone(conn: Connection, account_id: int, thread_ids: Iterable[str]) -> int:
    """Drop the links of those of `thread_ids` with no message left in the account.

    Runs in the caller's transaction, after its rows are gone; returns how many
    conversations were forgotten.
    """
    wanted = sorted({str(t) for t in thread_ids if t})
    if not wanted:
        return 0
    # The account's folders as values, not a subquery: every planner then walks
    # ix_messages_thread (folder, thread) per pair.
    folder_ids = account_folder_ids(conn, account_id)
    m, t = messages.c, thread_links.c
    forgotten = 0
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        alive: set[str] = set()
        if folder_ids:
            alive = {str(r[0]) for r in conn.execute(
                select(m.thread_id).where(m.folder_id.in_(folder_ids), m.thread_id.in_(chunk))
                .distinct())}
        gone = [tid for tid in chunk if tid not in alive]
        if gone:
            conn.execute(delete(thread_links).where(t.account_id == account_id,
                                                    t.thread_id.in_(gone)))
            forgotten += len(gone)
    return forgotten


def threads_in_folders(conn: Connection, folder_ids: list[int]) -> list[str]:
    """The conversations with messages in these folders (their list rows): what a
    folder's delete may leave without a message, read before it."""
    if not folder_ids:
        return []
    ft = folder_threads.c
    return [str(r[0]) for r in conn.execute(
        select(ft.thread_id).where(ft.folder_id.in_(folder_ids)).distinct())]


def sweep_account(conn: Connection, account_id: int, after: str,
                  limit: int = STEP) -> tuple[str | None, int]:
    """Check up to `limit` of the account's linked conversations, by id after
    `after`; drop the links of those without messages.

    Returns where the next step starts (None: the account is done) and how many
    conversations were forgotten.
    """
    t = thread_links.c
    ids = [str(r[0]) for r in conn.execute(
        select(t.thread_id).where(t.account_id == account_id, t.thread_id > after)
        .distinct().order_by(t.thread_id).limit(limit))]
    forgotten = forget_gone(conn, account_id, ids)
    if len(ids) < limit:
        # The account is swept: it needs no start-up sweep any more (migration 0019).
        conn.execute(delete(thread_link_sweeps).where(
            thread_link_sweeps.c.account_id == account_id))
        return None, forgotten
    return ids[-1], forgotten


def sweep_pending(engine: Engine, limit: int = STEP,
                  on_step: Callable[[int, int], None] | None = None) -> int:
    """Sweep every account listed in `thread_link_sweeps`, one write transaction per
    step of `limit` conversations; returns how many conversations were forgotten.

    `on_step(account_id, forgotten)` is called after each step's commit, when this
    holds no transaction.
    """
    with engine.connect() as conn:
        pending = [int(r[0]) for r in conn.execute(
            select(thread_link_sweeps.c.account_id).order_by(thread_link_sweeps.c.account_id))]
    total = 0
    for account_id in pending:
        after: str | None = ""
        while after is not None:
            with engine.connect() as conn, write_transaction(conn):
                after, forgotten = sweep_account(conn, account_id, after, limit)
            total += forgotten
            if on_step is not None:
                on_step(account_id, forgotten)
    return total
