"""SQLite: thread_links and folder_threads are WITHOUT ROWID tables

Revision ID: 0016
Revises: 0015

Both are looked up and written only by their primary key (account, link key;
folder, thread), but as rowid tables SQLite kept each row twice: in the
table, by a rowid nobody uses, and in the primary key's index. Every
delivery of a new conversation wrote both, in the index writer that every
`250` waits for. Clustered on the primary key, a row is one entry in one
b-tree (mailstore/thread_index.py has the measurements). SQLite cannot
change this in place, so both tables are rebuilt (batch "recreate", with
foreign keys off as env.py runs SQLite migrations); every row is kept.

PostgreSQL and MariaDB (InnoDB clusters on the primary key already): nothing
to do.
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLES = ("thread_links", "folder_threads")


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(name, recreate="always",
                                  table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass


def upgrade() -> None:
    _rebuild(False)


def downgrade() -> None:
    _rebuild(True)
