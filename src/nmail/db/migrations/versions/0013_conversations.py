"""conversations: thread_links, folder_threads, ix_messages_thread with date

Revision ID: 0013
Revises: 0012

Threads were a hash of each message's first References id, computed alone:
a reply carrying only In-Reply-To of a reply, or two threads joined later,
stayed apart. Now every msg-id key a message named points to its thread
(mailstore/thread_index.py), and `folder_threads` lists each folder's
conversations by their newest date.

Existing rows keep what the index has (no files are read): the old thread id
(its root's key), In-Reply-To and Message-ID are linked and joined here;
rows whose ids join are given one id. `nmail dbsync` is not needed.
"""

import hashlib
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _key(msg_id: str) -> str:
    return hashlib.blake2b(("m:" + msg_id[:998]).encode("utf-8", "surrogatepass"),
                           digest_size=8).hexdigest()


def upgrade() -> None:
    op.create_table(
        "thread_links",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("link_key", sa.String(length=16), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "link_key"),
    )
    op.create_index("ix_thread_links_thread", "thread_links", ["account_id", "thread_id"])
    op.create_table(
        "folder_threads",
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("latest_date", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["folder_id"], ["folders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("folder_id", "thread_id"),
    )
    op.create_index("ix_folder_threads_latest", "folder_threads",
                    ["folder_id", "latest_date", "thread_id"])
    op.drop_index("ix_messages_thread", table_name="messages")
    op.create_index("ix_messages_thread", "messages", ["folder_id", "thread_id", "date"])
    _backfill(op.get_bind())


def _backfill(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text(
        "SELECT m.id, f.account_id, m.message_id, m.in_reply_to, m.thread_id "
        "FROM messages m JOIN folders f ON f.id = m.folder_id")).all()
    by_account: dict[int, list[tuple[int, list[str]]]] = defaultdict(list)
    for mid, account_id, message_id, in_reply_to, thread_id in rows:
        keys = [k for k in (thread_id, in_reply_to and _key(in_reply_to),
                            message_id and _key(message_id)) if k]
        by_account[int(account_id)].append((int(mid), keys or [f"{int(mid):016x}"]))
    old = {int(r[0]): str(r[4]) for r in rows}
    for account_id, items in by_account.items():
        parent: dict[str, str] = {}

        def find(key: str, parent: dict[str, str] = parent) -> str:
            root = key
            while parent.setdefault(root, root) != root:
                root = parent[root]
            while parent[key] != root:
                parent[key], key = root, parent[key]
            return root

        for _, keys in items:
            first = find(keys[0])
            for key in keys[1:]:
                other = find(key)
                if other != first:
                    low, high = sorted((first, other))
                    parent[high] = low
                    first = low
        changed = [{"b_id": mid, "b_tid": find(keys[0])} for mid, keys in items
                   if find(keys[0]) != old[mid]]
        for start in range(0, len(changed), 1000):
            bind.execute(sa.text("UPDATE messages SET thread_id = :b_tid WHERE id = :b_id"),
                         changed[start:start + 1000])
        links = [{"a": account_id, "k": key, "t": find(key)} for key in parent
                 if len(key) == 16]
        for start in range(0, len(links), 1000):
            bind.execute(sa.text("INSERT INTO thread_links (account_id, link_key, thread_id) "
                                 "VALUES (:a, :k, :t)"), links[start:start + 1000])
    bind.execute(sa.text(
        "INSERT INTO folder_threads (folder_id, thread_id, latest_date) "
        "SELECT folder_id, thread_id, MAX(date) FROM messages GROUP BY folder_id, thread_id"))


def downgrade() -> None:
    op.drop_index("ix_messages_thread", table_name="messages")
    op.create_index("ix_messages_thread", "messages", ["folder_id", "thread_id"])
    op.drop_index("ix_folder_threads_latest", table_name="folder_threads")
    op.drop_table("folder_threads")
    op.drop_index("ix_thread_links_thread", table_name="thread_links")
    op.drop_table("thread_links")
