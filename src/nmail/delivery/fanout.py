"""Who gets a message at end of DATA: local mailboxes, remote addresses, room left.

The intake's accepted RCPTs (each a directory Resolution) become each local
mailbox once and each remote address once with the DSN request that led to
it; then the real size is checked against every quota'd mailbox.
"""

from __future__ import annotations

from nmail.delivery.envelope import Envelope
from nmail.directory.model import Account
from nmail.mailstore.store import MailStore
from nmail.policy import recipients
from nmail.policy.decision import Decision


def split_recipients(
    envelope: Envelope,
) -> tuple[list[Account], list[str], list[str | None], list[str | None]]:
    """Local mailboxes (each once), remote addresses (each once) and their DSN requests.

    A remote address takes NOTIFY and ORCPT from the RCPT that led to it;
    reached through an alias, its original recipient is the alias (RFC
    3461 section 5.2.1: the address the sender used).
    """
    seen: set[int] = set()
    local: list[Account] = []
    remote: list[str] = []
    notify: list[str | None] = []
    orcpt: list[str | None] = []
    seen_remote: set[str] = set()
    for i, resolution in enumerate(envelope.recipients):
        for account in resolution.accounts:
            if account.id not in seen:
                seen.add(account.id)
                local.append(account)
        asked = envelope.dsn_notify[i] if i < len(envelope.dsn_notify) else None
        original = envelope.dsn_orcpt[i] if i < len(envelope.dsn_orcpt) else None
        for address in resolution.remote:
            if address.lower() not in seen_remote:
                seen_remote.add(address.lower())
                remote.append(address)
                notify.append(asked)
                if original is None and address.lower() != resolution.address.lower():
                    orcpt.append(f"rfc822;{resolution.address}")
                else:
                    orcpt.append(original)
    return local, remote, notify, orcpt


def quota_refusal(
    store: MailStore, local: list[Account], others: bool, size: int
) -> Decision | None:
    """The real size against each quota (RCPT saw only the client's SIZE, if any).

    One reply answers every recipient: a lone mailbox that is full gets
    552 5.2.2; a full one among several makes the whole message 452 4.2.2
    (nothing stored; the sending server retries and in the end bounces
    to its own user), rather than a bounce of our own to an unverified
    sender.
    """
    for account in local:
        if not account.quota_bytes:
            continue
        usage = store.usage(account.id)
        decision = recipients.check_quota(account.address, usage, account.quota_bytes, size)
        if not decision.accepted:
            if len(local) == 1 and not others:
                return decision
            return Decision(
                452, "4.2.2",
                f"Mailbox full <{account.address}>; not delivered to anyone, try later",
            )
    return None
