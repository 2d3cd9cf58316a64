"""Sending delivery notices (bounces, delay warnings) back to the sender.

Local senders get the notice in their INBOX through `local_bounce` (the
runtime routes it through the intake); remote senders get it through the
queue with the null sender. A message that is itself a bounce, or came
with the null sender, never gets a notice: that is the loop guard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from nmail.bounce.dsn import DsnFacts, RecipientReport, build_dsn
from nmail.queue.content import address_domain
from nmail.queue.notice_original import Quoted
from nmail.queue.store import MessageInfo, RecipientInfo

log = logging.getLogger("nmail.queue")

LocalBounce = Callable[[bytes, str], None]
Enqueue = Callable[[str, Sequence[str], bytes], str]


def wants(notify: str | None, event: str) -> bool:
    """RFC 3461: no NOTIFY means failures and delays; NEVER means nothing."""
    if notify is None:
        return event in ("FAILURE", "DELAY")
    return event in notify.split(",")


class Notifier:
    """Builds DSNs and delivers them to the original sender."""

    def __init__(
        self,
        hostname: str,
        *,
        is_local_domain: Callable[[str], bool],
        local_bounce: LocalBounce | None,
        enqueue_bounce: Enqueue,
        return_path: Callable[[str], str] | None = None,
    ) -> None:
        self._hostname = hostname
        # The address a notice goes to for an envelope sender: forwarded
        # mail carries an SRS sender of ours, whose notice goes straight
        # to the author it stands for (a round trip to ourselves would loop).
        self._return_path = return_path or (lambda sender: sender)
        self._is_local = is_local_domain
        self._local_bounce = local_bounce
        self._enqueue_bounce = enqueue_bounce

    def can_deliver_now(self, message: MessageInfo) -> bool:
        """False when the notice must wait for a node that has the local delivery path."""
        if message.sender == "" or message.is_bounce:
            return True  # nothing will be sent at all
        return self._local_bounce is not None or not self._is_local(address_domain(message.sender))

    def send(
        self,
        message: MessageInfo,
        recipients: Sequence[RecipientInfo],
        reports: Sequence[RecipientReport],
        original: Quoted,
        now: float,
    ) -> bool:
        """Send one notice about `reports`, quoting `original` (notice_original.py);
        True if sent, False if dropped (and logged)."""
        event = {"failed": "FAILURE", "delayed": "DELAY"}.get(reports[0].action, "SUCCESS")
        notify_by_addr = {rc.address: rc.notify for rc in recipients}
        chosen = [rep for rep in reports if wants(notify_by_addr.get(rep.recipient), event)]
        if not chosen:
            return False
        if message.sender == "" or message.is_bounce:
            log.warning(
                "queue %s: not sending a %s notice for a message from the null sender"
                " or a bounce (loop guard); recipients %s",
                message.id, reports[0].action, ", ".join(rep.recipient for rep in chosen),
            )
            return False
        facts = DsnFacts(
            queue_id=message.id, sender=message.sender, arrival=float(message.created_at),
            original=original.data, envid=message.dsn_envid, ret=message.dsn_ret,
            original_size=original.size if original.cut else None,
        )
        try:
            dsn = build_dsn(facts, chosen, reporting_mta=self._hostname, now=now)
            target = self._return_path(message.sender)
            if self._local_bounce is not None and self._is_local(address_domain(target)):
                self._local_bounce(dsn, target)
            else:
                self._enqueue_bounce("", [target], dsn)
        except Exception:
            log.exception(
                "queue %s: could not deliver the %s notice to %s; dropped",
                message.id, reports[0].action, message.sender,
            )
            return False
        log.info(
            "queue %s: %s notice sent to %s for %s", message.id, reports[0].action,
            message.sender, ", ".join(rep.recipient for rep in chosen),
        )
        return True
