"""webmail: senders whose remote images are always shown

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_image_senders",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE",
                                name=op.f("fk_web_image_senders_account_id_accounts")),
        sa.PrimaryKeyConstraint("account_id", "address", name=op.f("pk_web_image_senders")),
    )


def downgrade() -> None:
    op.drop_table("web_image_senders")
