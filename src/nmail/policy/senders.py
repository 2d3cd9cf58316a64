"""Which envelope senders an authenticated user may use."""

from __future__ import annotations

from collections.abc import Iterable

from nmail.policy.decision import ACCEPT, Decision


def sender_not_owned(sender: str) -> Decision:
    return Decision(553, "5.7.1", f"Sender address rejected: not owned by user <{sender}>")


def author_not_owned(address: str, user: str) -> Decision:
    return Decision(
        550, "5.7.1", f"From/Sender address <{address}> is not one {user} may send as"
    )


def may_send_as(address: str, owned: Iterable[str]) -> bool:
    """Whether `address` is one of `owned` (addresses, or "@domain" for a whole domain)."""
    wanted = address.lower()
    domain = "@" + wanted.rpartition("@")[2]
    return any(o.lower() in (wanted, domain) for o in owned)


def check_sender_owned(sender: str, owned: Iterable[str]) -> Decision:
    """An authenticated MAIL FROM must be the user's address, an alias or a send-as grant.

    The null sender (a client sending a delivery report) is allowed; case is ignored.
    """
    if not sender or may_send_as(sender, owned):
        return ACCEPT
    return sender_not_owned(sender)
