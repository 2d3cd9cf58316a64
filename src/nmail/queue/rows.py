"""The queue's row values and states, and how rows become values.

Recipient states: queued (waiting for next_attempt), delivering (leased by
a node until lease_until), delivered, failed, corrupt (body unreadable,
moved aside), bouncing (the admin asked for a bounce; the notice is not
sent yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nmail.db.tables import queue_messages, queue_recipients

QUEUED = "queued"
DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"
CORRUPT = "corrupt"
BOUNCING = "bouncing"
FINAL_STATES = (DELIVERED, FAILED)
PENDING_STATES = (QUEUED, DELIVERING, CORRUPT, BOUNCING)

m = queue_messages
r = queue_recipients


@dataclass(frozen=True, slots=True)
class NewRecipient:
    address: str
    domain: str
    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A queue_messages row."""

    id: str
    sender: str
    size: int
    created_at: int
    is_bounce: bool
    dsn_envid: str | None
    dsn_ret: str | None
    warned: bool
    auth_user: str | None = None
    client_ip: str | None = None


@dataclass(frozen=True, slots=True)
class RecipientInfo:
    """A queue_recipients row."""

    id: int
    message_id: str
    address: str
    domain: str
    state: str
    attempts: int
    next_attempt: int
    last_error: str | None
    remote_host: str | None
    notify: str | None
    orcpt: str | None
    lease_owner: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """Recipients leased to one node, with their messages."""

    token: str
    messages: dict[str, MessageInfo]
    recipients: tuple[RecipientInfo, ...]


MESSAGE_COLUMNS = (
    m.c.id, m.c.sender, m.c.size, m.c.created_at, m.c.is_bounce, m.c.dsn_envid,
    m.c.dsn_ret, m.c.warned, m.c.auth_user, m.c.client_ip,
)
RECIPIENT_COLUMNS = (
    r.c.id, r.c.message_id, r.c.recipient, r.c.domain, r.c.state, r.c.attempts,
    r.c.next_attempt, r.c.last_error, r.c.remote_host, r.c.dsn_notify, r.c.orcpt,
    r.c.lease_owner,
)


def message_from(row: Any) -> MessageInfo:
    """A queue_messages row (selected with MESSAGE_COLUMNS) as a value."""
    return MessageInfo(
        id=str(row[0]), sender=str(row[1]), size=int(row[2]),
        created_at=int(row[3]), is_bounce=bool(row[4]),
        dsn_envid=row[5], dsn_ret=row[6], warned=bool(row[7]),
        auth_user=row[8], client_ip=row[9],
    )


def recipient_from(row: Any) -> RecipientInfo:
    """A queue_recipients row (selected with RECIPIENT_COLUMNS) as a value."""
    return RecipientInfo(
        id=int(row[0]), message_id=str(row[1]), address=str(row[2]),
        domain=str(row[3]), state=str(row[4]), attempts=int(row[5]),
        next_attempt=int(row[6]), last_error=row[7], remote_host=row[8],
        notify=row[9], orcpt=row[10], lease_owner=row[11],
    )
