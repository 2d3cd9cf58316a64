"""One message past the end-of-data checks, and what forwarding rules make of it.

`Acceptance` is what Intake (intake.py) stores, queues and logs for one
message; `forwarded` applies the recipients' forwarding rules to it: the
copies that are kept, a local target's copy stored here, a remote one
queued. Kept apart from intake.py, which decides when to do what and does
it, because this only computes the new plan (a directory lookup per target,
no store, no queue), and intake.py was at its 400-line limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nmail.delivery.envelope_checks import EnvelopeChecks
from nmail.delivery.trace import delivered_to, return_path
from nmail.directory.errors import DirectoryError
from nmail.directory.model import Account
from nmail.mailstore.store import NewMessage
from nmail.message_source import MessageSource
from nmail.quick_init import quick_init

log = logging.getLogger(__name__)


@quick_init
@dataclass(frozen=True, slots=True)
class Acceptance:
    """One message past the end-of-data checks: what to store, queue and log."""

    msg_id: str
    sender: str
    all_rcpts: list[str]
    size: int
    local: list[Account]
    remote: list[str]
    items: list[NewMessage]
    received: bytes
    # RFC 3461 per remote recipient, in `remote` order.
    notify: list[str | None]
    orcpt: list[str | None]


def forwarded(
    job: Acceptance,
    keep: Sequence[Account],
    forwards: Sequence[str],
    content: MessageSource,
    checks: EnvelopeChecks,
    *,
    queueing: bool,
    clock: Callable[[], float],
) -> Acceptance:
    """`job` after forwarding: copies for the `keep` accounts only, and each target of
    `forwards` added, a local mailbox's copy stored here, a remote address queued
    (when there is a queue); an invalid target is logged and skipped. Targets are
    resolved as RCPT's are (EnvelopeChecks.resolve: postmaster at our host name too)."""
    kept_ids = {a.id for a in keep}
    local = list(keep)
    items = [i for i in job.items if i.account.id in kept_ids]
    remote = list(job.remote)
    seen_remote = {r.lower() for r in remote}
    for target in forwards:
        try:
            checks.lookups.refresh()
            resolution = checks.resolve(target)
        except DirectoryError:
            log.warning("forwarding address %r is not valid; skipped", target)
            continue
        for account in resolution.accounts:  # a forward to a local mailbox: stored here
            if account.id not in kept_ids and account.id not in {a.id for a in job.local}:
                kept_ids.add(account.id)
                local.append(account)
                items.append(NewMessage(
                    account=account, folder="INBOX",
                    prefix=return_path(job.sender) + delivered_to(account.address)
                    + job.received,
                    content=content, internal_date=int(clock())))
        for address in resolution.remote:
            if queueing and address.lower() not in seen_remote:
                seen_remote.add(address.lower())
                remote.append(address)
    added = len(remote) - len(job.remote)
    return Acceptance(
        job.msg_id, job.sender, job.all_rcpts, job.size, local, remote, items,
        job.received, job.notify + [None] * added, job.orcpt + [None] * added,
    )
