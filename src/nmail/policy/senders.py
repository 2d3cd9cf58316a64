"""Which envelope senders an authenticated user may use."""

from __future__ import annotations

from collections.abc import Iterable

from nmail.policy.decision import ACCEPT, Decision


def sender_not_owned(sender: str) -> Decision:
    return Decision(553, "5.7.1", f"Sender address rejected: not owned by user <{sender}>")


def check_sender_owned(sender: str, owned: Iterable[str]) -> Decision:
    """An authenticated MAIL FROM must be the user's address or one of their aliases.

    The null sender (a client sending a delivery report) is allowed; case is ignored.
    """
    if not sender:
        return ACCEPT
    wanted = sender.lower()
    if any(wanted == address.lower() for address in owned):
        return ACCEPT
    return sender_not_owned(sender)
