"""forwarding and vacation rules, vacation reply log, address book

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE",
                                   name=op.f(f"fk_{table}_account_id_accounts"))


def upgrade() -> None:
    op.create_table(
        "mail_rules",
        sa.Column("account_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("forward_to", sa.Text(), nullable=False),
        sa.Column("forward_keep", sa.Boolean(), nullable=False),
        sa.Column("vacation_on", sa.Boolean(), nullable=False),
        sa.Column("vacation_subject", sa.String(200), nullable=False),
        sa.Column("vacation_body", sa.Text(), nullable=False),
        sa.Column("vacation_days", sa.Integer(), nullable=False),
        sa.Column("vacation_until", sa.BigInteger(), nullable=False),
        _account_fk("mail_rules"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_mail_rules")),
    )
    op.create_table(
        "vacation_replies",
        sa.Column("account_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        _account_fk("vacation_replies"),
        sa.PrimaryKeyConstraint("account_id", "sender", name=op.f("pk_vacation_replies")),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("phone", sa.String(64), nullable=False),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("groups", sa.String(400), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _account_fk("contacts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_index("ix_contacts_account_email", "contacts", ["account_id", "email"])


def downgrade() -> None:
    op.drop_table("contacts")
    op.drop_table("vacation_replies")
    op.drop_table("mail_rules")
