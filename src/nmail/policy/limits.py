"""Size and count limits of one message."""

from __future__ import annotations

from nmail.policy.decision import ACCEPT, Decision

MESSAGE_TOO_BIG = Decision(552, "5.3.4", "Message size exceeds the server limit")
TOO_MANY_RECIPIENTS = Decision(452, "4.5.3", "Too many recipients")


def check_size(size: int, limit: int) -> Decision:
    """Refuse a message (or a SIZE= hint) over `limit` octets; limit 0 = no limit."""
    if limit and size > limit:
        return MESSAGE_TOO_BIG
    return ACCEPT


def check_recipient_count(accepted: int, limit: int) -> Decision:
    """Refuse one more recipient when `accepted` already reached `limit` (RFC 5321 4.5.3.1.8)."""
    if accepted >= limit:
        return TOO_MANY_RECIPIENTS
    return ACCEPT
