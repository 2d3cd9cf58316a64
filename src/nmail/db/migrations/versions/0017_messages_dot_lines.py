"""messages.dot_lines: whether a line of the message file starts with "."

Revision ID: 0017
Revises: 0016

POP3 must dot-stuff such a line when it sends the file (RFC 1939 section
3). Scanning every message for it was ~17k of the ~48k instructions of a
pipelined RETR (bench/pop3_instructions.py); the delivery already knows
(SMTP's DATA unstuffing saw every line start), so it is written once into
the row. NULL, for the rows from before and any that do not say: not
known, and POP3 scans as before. An added nullable column with no default
is a change of the table's description on SQLite, PostgreSQL and MariaDB
(InnoDB's instant ADD COLUMN): no row is rewritten.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("dot_lines", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("dot_lines")
