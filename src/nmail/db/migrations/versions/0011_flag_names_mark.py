"""folders.names_modseq: the MODSEQ up to which Maildir file names follow the index

Revision ID: 0011
Revises: 0010

A flag change commits first and renames its files after answering
(mailstore/op_flags.py); this mark tells start-up repair and dbsync which
rows may still carry old `:2,` letters. Every existing name follows the
index (flag renames were done before their commit until now), so the mark
starts at each folder's HIGHESTMODSEQ.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("folders") as batch:
        batch.add_column(sa.Column("names_modseq", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    op.execute("UPDATE folders SET names_modseq = highest_modseq")


def downgrade() -> None:
    with op.batch_alter_table("folders") as batch:
        batch.drop_column("names_modseq")
