"""full-text search: message_search, search_folders, and each database's index on them

Revision ID: 0005
Revises: 0004

SQLite: an FTS5 table over message_search (external content) kept in step
by triggers, without a prefix index (it tripled the cost of indexing a
message; a prefix word scans its short range of terms instead).
PostgreSQL: a GIN index on the tsvector. MariaDB: a FULLTEXT index.
See mailstore/search_sql.py.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE VIRTUAL TABLE message_fts USING fts5(terms, content='message_search',"
    " content_rowid='message_id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER message_search_ai AFTER INSERT ON message_search BEGIN"
    " INSERT INTO message_fts(rowid, terms) VALUES (new.message_id, new.terms); END",
    "CREATE TRIGGER message_search_ad AFTER DELETE ON message_search BEGIN"
    " INSERT INTO message_fts(message_fts, rowid, terms)"
    " VALUES ('delete', old.message_id, old.terms); END",
    "CREATE TRIGGER message_search_au AFTER UPDATE ON message_search BEGIN"
    " INSERT INTO message_fts(message_fts, rowid, terms)"
    " VALUES ('delete', old.message_id, old.terms);"
    " INSERT INTO message_fts(rowid, terms) VALUES (new.message_id, new.terms); END",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "message_search",
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("terms", sa.Text().with_variant(TSVECTOR(), "postgresql")
                  .with_variant(MEDIUMTEXT(), "mysql"), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"],
                                name=op.f("fk_message_search_message_id_messages"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_search")),
    )
    op.create_table(
        "search_folders",
        sa.Column("folder_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("indexed_modseq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["folder_id"], ["folders.id"],
                                name=op.f("fk_search_folders_folder_id_folders"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("folder_id", name=op.f("pk_search_folders")),
    )
    if dialect == "sqlite":
        for statement in _SQLITE:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("CREATE INDEX ix_message_search_terms ON message_search USING gin (terms)")
    else:
        op.execute("CREATE FULLTEXT INDEX ix_message_search_terms ON message_search (terms)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE message_fts")  # its triggers go with message_search
    op.drop_table("search_folders")
    op.drop_table("message_search")
