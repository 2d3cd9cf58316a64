"""SQLite: ids of domains, accounts and folders are never handed out again

Revision ID: 0012
Revises: 0011

A table whose key is a plain INTEGER PRIMARY KEY gives the next row
max(id)+1, so after `nmail user del` + `user add` the new account got the
deleted one's id, and an SMTP session, POP3 drop, webmail session or cache
that still held that id acted as the new owner. AUTOINCREMENT (kept in
sqlite_sequence) never goes back. SQLite cannot add it in place, so the three
tables are rebuilt (batch "recreate"); the copy keeps every id and the
sequence starts at the highest id present (ids deleted above it before this
migration left no trace and cannot be known).

The rebuild drops the old table; with foreign keys on, that DROP would
cascade into every child row (folders, messages, sessions...). env.py
therefore runs SQLite migrations with foreign keys off and runs
`PRAGMA foreign_key_check` before it commits.

PostgreSQL (sequences) and MariaDB (AUTO_INCREMENT, persistent since 10.2.4)
never reuse ids: nothing to do there.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Parents before children, so each rebuilt table's references find their table.
TABLES = ("domains", "accounts", "folders")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(name, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
