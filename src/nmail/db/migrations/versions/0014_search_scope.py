"""message_search: each row's account and folder, so a search walks its own newest rows

Revision ID: 0014
Revises: 0013

A common word's newest matches are among the account's newest messages, so
PostgreSQL and MariaDB search first walks the account's (or folder's)
newest index rows through (account_id, message_id) and (folder_id,
message_id) and stops at a page, before asking their full-text index (see
mailstore/search_postgres.py, search_mariadb.py). A message row never
changes folder (a move makes a new row), so the copies never go stale.

MariaDB's terms also get a space before and after, so LOCATE(' zbmeet')
finds a term at either end of the text (search_mariadb.py); its FULLTEXT
index is dropped for the rewrite and made again (one bulk build instead of a
re-index of every row). SQLite keeps its FTS5 plan: only the columns, and
its update trigger follows only `terms`, so filling the columns does not
rewrite the FTS index.

Measured at 100,000 messages (bench/search.py data, 2 loaded cores): 14 s
on PostgreSQL; on MariaDB the old ALTER with the FULLTEXT index in place
took 79 s. `nmail dbsync` rebuilds the index from the files either way.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_SQLITE_AU = (
    "CREATE TRIGGER message_search_au AFTER UPDATE {of}ON message_search BEGIN"
    " INSERT INTO message_fts(message_fts, rowid, terms)"
    " VALUES ('delete', old.message_id, old.terms);"
    " INSERT INTO message_fts(rowid, terms) VALUES (new.message_id, new.terms); END"
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "mysql":
        op.execute("ALTER TABLE message_search DROP INDEX ix_message_search_terms,"
                   " ADD COLUMN account_id INTEGER NOT NULL DEFAULT 0,"
                   " ADD COLUMN folder_id INTEGER NOT NULL DEFAULT 0")
        op.execute("UPDATE message_search s JOIN messages m ON m.id = s.message_id"
                   " JOIN folders f ON f.id = m.folder_id"
                   " SET s.account_id = f.account_id, s.folder_id = m.folder_id,"
                   " s.terms = CONCAT(' ', s.terms, ' ')")
    else:
        op.add_column("message_search", sa.Column("account_id", sa.Integer(), nullable=False,
                                                  server_default="0"))
        op.add_column("message_search", sa.Column("folder_id", sa.Integer(), nullable=False,
                                                  server_default="0"))
    if dialect == "postgresql":
        op.execute("UPDATE message_search s SET account_id = f.account_id,"
                   " folder_id = m.folder_id FROM messages m JOIN folders f"
                   " ON f.id = m.folder_id WHERE m.id = s.message_id")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER message_search_au")
        op.execute(_SQLITE_AU.format(of="OF terms "))
        op.execute("UPDATE message_search SET"
                   " folder_id = (SELECT m.folder_id FROM messages m"
                   " WHERE m.id = message_search.message_id),"
                   " account_id = (SELECT f.account_id FROM messages m"
                   " JOIN folders f ON f.id = m.folder_id WHERE m.id = message_search.message_id)")
        return
    op.create_index("ix_message_search_account", "message_search", ["account_id", "message_id"])
    op.create_index("ix_message_search_folder", "message_search", ["folder_id", "message_id"])
    if dialect == "mysql":
        op.execute("CREATE FULLTEXT INDEX ix_message_search_terms ON message_search (terms)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER message_search_au")
        op.execute(_SQLITE_AU.format(of=""))
    else:
        op.drop_index("ix_message_search_folder", "message_search")
        op.drop_index("ix_message_search_account", "message_search")
    if dialect == "mysql":
        op.execute("ALTER TABLE message_search DROP INDEX ix_message_search_terms,"
                   " DROP COLUMN account_id, DROP COLUMN folder_id")
        op.execute("UPDATE message_search SET terms = TRIM(terms)")
        op.execute("CREATE FULLTEXT INDEX ix_message_search_terms ON message_search (terms)")
        return
    for name in ("folder_id", "account_id"):
        op.execute(f"ALTER TABLE message_search DROP COLUMN {name}")
