"""the mailbox model: nested folders, roles, counters, flag bits, sort keys, tombstones

Revision ID: 0010
Revises: 0009

Existing rows are filled in here (flag bits, sort keys, unseen counts,
roles), in chunks, from the same functions the mail store uses, so an
upgraded index is what a fresh one would be.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_messages_folder_arrival": ["folder_id", "internal_date", "id"],
    "ix_messages_folder_size": ["folder_id", "size", "id"],
    "ix_messages_folder_from": ["folder_id", "from_sort", "id"],
    "ix_messages_folder_subject": ["folder_id", "subject_sort", "id"],
    "ix_messages_folder_modseq": ["folder_id", "modseq"],
    "ix_messages_folder_sysflags": ["folder_id", "sysflags"],
}
_ROLES = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Spam": "\\Junk",
          "Archive": "\\Archive"}


def upgrade() -> None:
    with op.batch_alter_table("folders") as batch:
        batch.alter_column("name", existing_type=sa.String(200), type_=sa.String(255),
                           existing_nullable=False)
        batch.add_column(sa.Column("role", sa.String(16), nullable=True))
        batch.add_column(sa.Column("unseen_count", sa.Integer(), nullable=False,
                                   server_default="0"))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("sysflags", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("created_modseq", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("subject_sort", sa.String(100), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("from_sort", sa.String(100), nullable=False,
                                   server_default=""))
    with op.batch_alter_table("messages") as batch:
        for name, columns in _INDEXES.items():
            batch.create_index(name, columns, unique=False)
    op.create_table(
        "message_tombstones",
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("expunged_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["folder_id"], ["folders.id"],
                                name=op.f("fk_message_tombstones_folder_id_folders"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("folder_id", "uid", name=op.f("pk_message_tombstones")),
    )
    op.create_index("ix_message_tombstones_folder_modseq", "message_tombstones",
                    ["folder_id", "modseq"], unique=False)
    _fill_existing()


def _fill_existing() -> None:
    from nmail.mailstore.indexrow import sort_keys
    from nmail.mailstore.names import flag_bits, parse_flags

    conn = op.get_bind()
    msgs = sa.table("messages", sa.column("id", sa.BigInteger), sa.column("folder_id"),
                    sa.column("flags"), sa.column("modseq"), sa.column("subject"),
                    sa.column("from_name"), sa.column("from_addr"), sa.column("sysflags"),
                    sa.column("created_modseq"), sa.column("subject_sort"),
                    sa.column("from_sort"))
    flds = sa.table("folders", sa.column("id"), sa.column("name"), sa.column("role"),
                    sa.column("unseen_count"))
    unseen: dict[int, int] = {}
    last = 0
    update = (
        sa.update(msgs).where(msgs.c.id == sa.bindparam("b_id")).values(
            sysflags=sa.bindparam("b_bits"), created_modseq=sa.bindparam("b_modseq"),
            subject_sort=sa.bindparam("b_subject"), from_sort=sa.bindparam("b_from"))
    )
    while True:
        rows = conn.execute(
            sa.select(msgs.c.id, msgs.c.folder_id, msgs.c.flags, msgs.c.modseq, msgs.c.subject,
                      msgs.c.from_name, msgs.c.from_addr)
            .where(msgs.c.id > last).order_by(msgs.c.id).limit(2000)
        ).all()
        if not rows:
            break
        params: list[dict[str, Any]] = []
        for r in rows:
            bits = flag_bits(parse_flags(r.flags))
            if not bits & 1:
                unseen[int(r.folder_id)] = unseen.get(int(r.folder_id), 0) + 1
            subject, sender = sort_keys(r.subject, r.from_name, r.from_addr)
            params.append({"b_id": r.id, "b_bits": bits, "b_modseq": r.modseq,
                           "b_subject": subject, "b_from": sender})
        conn.execute(update, params)
        last = int(rows[-1].id)
    for folder_id, count in unseen.items():
        conn.execute(sa.update(flds).where(flds.c.id == folder_id).values(unseen_count=count))
    for name, role in _ROLES.items():
        conn.execute(sa.update(flds).where(flds.c.name == name).values(role=role))


def downgrade() -> None:
    op.drop_table("message_tombstones")
    with op.batch_alter_table("messages") as batch:
        for name in _INDEXES:
            batch.drop_index(name)
        for column in ("sysflags", "created_modseq", "subject_sort", "from_sort"):
            batch.drop_column(column)
    with op.batch_alter_table("folders") as batch:
        batch.drop_column("unseen_count")
        batch.drop_column("role")
        batch.alter_column("name", existing_type=sa.String(255), type_=sa.String(200),
                           existing_nullable=False)
