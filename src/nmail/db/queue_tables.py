"""The outbound queue's tables: one row per queued message, one per recipient.

Only queue/ writes them (queue/store.py and the scheduler); the body of a
message is a file beside them (DIR/queue/<id>.eml, queue/content.py). Apart
from tables.py (the mail store's and the directory's schema) so each schema
keeps its room; defined on the same `metadata`, and named by tables.py too,
where the rest of the code imports them from.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from nmail.db.metadata import metadata

# Outbound queue: one row per message (body in DIR/queue/<id>.eml), one per recipient.
queue_messages = Table(
    "queue_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("sender", String(320), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("auth_user", String(320), nullable=True),
    Column("client_ip", String(64), nullable=True),
    Column("is_bounce", Boolean, nullable=False, default=False),
    Column("dsn_envid", String(100), nullable=True),
    Column("dsn_ret", String(8), nullable=True),
    Column("warned", Boolean, nullable=False, default=False),
)

queue_recipients = Table(
    "queue_recipients",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column(
        "message_id",
        String(40),
        ForeignKey("queue_messages.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("recipient", String(320), nullable=False),
    Column("domain", String(253), nullable=False),
    # queued | delivering | delivered | failed
    Column("state", String(16), nullable=False, default="queued"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("remote_host", String(255), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("dsn_notify", String(40), nullable=True),
    Column("orcpt", String(320), nullable=True),
    Index("ix_queue_recipients_due", "state", "next_attempt"),
    Index("ix_queue_recipients_message", "message_id"),
)
