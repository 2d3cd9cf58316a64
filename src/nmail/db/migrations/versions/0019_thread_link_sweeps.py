"""thread_link_sweeps: the accounts whose stale conversation links are still to be swept

Revision ID: 0019
Revises: 0018

Before thread_sweep.py (Dec 7, 2026) a conversation's `thread_links` rows
stayed after its last message was expunged; an install upgraded from then
keeps them until `nmail dbsync ALL`. The sweep itself is not done here:
Alembic runs every pending revision in one transaction (migrations/env.py:
SQLite's foreign-key check must pass before that one commit), so a sweep
here would drop every stale link of every account in one transaction, and
the upgrade runs from whichever process opens the database first, a
`nmail user list` beside a server still running the old version included:
on SQLite that transaction holds the database's only write lock, and the
server's writer (every delivery's `250`) waits for all of it; on MariaDB it
is one undo log as large as the table's dead part. So the migration only
writes down who is to be swept, one row per account that has links (a walk
of the links' primary key, no message read), and `nmail serve` sweeps them
at start in steps of 2,000 conversations, one short transaction each
(thread_sweep.sweep_pending), removing an account's row in the transaction
of its last step; `nmail dbsync` does the same. A sweep cut short (a crash,
a stop) resumes with the accounts still listed; a new install lists none.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "thread_link_sweeps",
        sa.Column("account_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.execute("INSERT INTO thread_link_sweeps (account_id) "
               "SELECT DISTINCT account_id FROM thread_links")


def downgrade() -> None:
    op.drop_table("thread_link_sweeps")
