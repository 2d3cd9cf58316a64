"""messages: drop ix_messages_folder_filename and ix_messages_folder_sysflags

Revision ID: 0018
Revises: 0017

No query reads through either. Every statement over `messages` that the
mail store, the webmail's reads, the search follower and dbsync run was
captured on a folder of 3,000 messages and EXPLAINed on SQLite, PostgreSQL
and MariaDB: none used (folder_id, sysflags), and only MariaDB chose
(folder_id, filename), as a covering scan of the folder for the search
follower's `id IN (...) AND folder_id = ?` check, which the primary key
answers row by row without it. No query filters or sorts on a file name or
on flag bits: the unseen counter is kept on the folder row, and only
repair and dbsync count unseen rows (`sysflags & 1 = 0`, which no b-tree
range answers): a folder scan now instead of a walk of the index, in the
pass that reads every row of the folder anyway.

Each was one more b-tree insert for every delivered message, in the index
writer that every `250` waits for (a message row went into eleven), and a
page or two of every commit's WAL; `sysflags` also changes with every flag
change. Downgrade makes them again.
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_messages_folder_filename": ["folder_id", "filename"],
    "ix_messages_folder_sysflags": ["folder_id", "sysflags"],
}


def upgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="messages")


def downgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "messages", columns)
