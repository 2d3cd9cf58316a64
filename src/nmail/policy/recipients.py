"""Decisions about one local recipient: exists, receives, has room, accepts the sender."""

from __future__ import annotations

from nmail.policy.decision import ACCEPT, Decision

SENDER_REJECTED = Decision(550, "5.7.1", "You are registered as spammer (by user's reject list)")


def unknown_user(address: str) -> Decision:
    """550 5.1.1 for a hosted domain's address that matches nobody."""
    return Decision(550, "5.1.1", f"Mailbox unavailable <{address}>")


def account_disabled(address: str) -> Decision:
    return Decision(550, "5.2.1", f"Account disabled <{address}>")


def over_quota(address: str) -> Decision:
    return Decision(
        552, "5.2.2", f"Requested mail action aborted: exceeded storage allocation - <{address}>"
    )


def check_quota(address: str, usage: int, quota: int, size_hint: int | None) -> Decision:
    """Refuse when usage plus the announced size would pass the quota (0 = unlimited)."""
    if quota > 0 and usage + (size_hint or 0) > quota:
        return over_quota(address)
    return ACCEPT


def check_account(
    *,
    address: str,
    receive_enabled: bool,
    sender_rejected: bool,
    usage: int,
    quota: int,
    size_hint: int | None,
) -> Decision:
    """All recipient checks for one hosted account, the first refusal winning."""
    if not receive_enabled:
        return account_disabled(address)
    if sender_rejected:
        return SENDER_REJECTED
    return check_quota(address, usage, quota, size_hint)
