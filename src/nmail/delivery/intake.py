"""The one way in: checks at MAIL/RCPT time and acceptance at end of data.

Every front door (SMTP, submission, webmail send, bounces) talks to this
class. It is synchronous; asyncio servers call it through an executor.
Decisions come from `policy` (pure functions); this class gathers the facts
they need (directory lookups, quota usage) and carries out the result
(store locally, queue remotely, log). The checks at MAIL and RCPT are
EnvelopeChecks' (envelope_checks.py), which this class hands them to.

The content is a MessageSource (nmail/message_source.py): `bytes`, or for
a message past 1 MiB its spool file. Header readers (hop count, authors,
forwarding rules, vacation, the signing domain) get `message_head`; the
Maildir copies and the queue's body are written from the source itself,
so a large message is never held whole here. The order is unchanged:
every copy is written and flushed before the 2xx; the caller closes a
spooled source only after accept() has returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from nmail.config import SmtpSettings
from nmail.delivery.acceptance import Acceptance, forwarded
from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.delivery.envelope_checks import EnvelopeChecks
from nmail.delivery.fanout import quota_refusal, split_recipients
from nmail.delivery.log import DeliveryLog
from nmail.delivery.queue_port import Queue
from nmail.delivery.rules import DeliveryRules
from nmail.delivery.srs import SrsRewriter
from nmail.delivery.submission import check_authors, plan_outbound
from nmail.delivery.trace import delivered_to, new_message_id, received_header, return_path
from nmail.directory import Directory
from nmail.directory.cache import DirectoryCache
from nmail.directory.model import Account, Resolution
from nmail.directory.names import comparable_domain
from nmail.mailstore.store import FolderGone, MailStore, NewMessage, StoreError
from nmail.message_source import MessageSource, message_head, with_prefix
from nmail.policy import limits, loops
from nmail.policy.decision import Decision

log = logging.getLogger(__name__)

TEMP_FAILURE = Decision(451, "4.3.0", "Temporary local error, please try again later")


class PendingAcceptance:
    """An accept_now() under way: wait for `stored`, then ask decision()."""

    def __init__(
        self,
        intake: Intake,
        job: Acceptance | None,
        stored: Future[Any],
        decided: Decision | None,
    ) -> None:
        self._intake = intake
        self._job = job
        self.stored = stored
        self._decided = decided

    def decision(self) -> Decision | None:
        """The answer once `stored` is done (it logs the outcome; call it once)."""
        job = self._job
        if job is None:
            return self._decided
        try:
            self.stored.result(timeout=0)
        except FolderGone:
            return None  # nothing stored: the blocking path looks again
        except Exception as exc:
            return self._intake._failed(job, exc)
        return self._intake._done(job)


def _remote_or_quota(envelope: Envelope) -> bool:
    """Whether a recipient is remote or a mailbox with a quota (accept_now's
    test). Loops, not nested any() over generators: ~3k instructions a
    message less (callgrind)."""
    for resolution in envelope.recipients:
        if resolution.remote:
            return True
        for account in resolution.accounts:
            if account.quota_bytes:
                return True
    return False


def _done_future() -> Future[Any]:
    done: Future[Any] = Future()
    done.set_result(None)
    return done


class Intake:
    """Protocol-agnostic checks and acceptance of mail for every front door."""

    def __init__(
        self,
        directory: Directory,
        store: MailStore,
        queue: Queue | None,
        settings: SmtpSettings,
        hostname: str,
        delivery_log: DeliveryLog,
        *,
        clock: Callable[[], float] = time.time,
        srs: SrsRewriter | None = None,
    ) -> None:
        self.directory = directory
        self.srs = srs
        # MAIL and RCPT read the directory through this memory, checked against
        # the directory generation on every question (see directory.cache).
        self.lookups = DirectoryCache(directory)
        self.store = store
        self.queue = queue
        self.settings = settings
        self.hostname = hostname
        self.log = delivery_log
        self.clock = clock
        # Users' forwarding and vacation replies (delivery/rules.py).
        self.rules = DeliveryRules(directory.engine, clock)
        self.checks = EnvelopeChecks(lookups=self.lookups, settings=settings, usage=store.usage,
                                     outbound=queue is not None, srs=srs, clock=clock,
                                     host_name=comparable_domain(hostname))

    def close(self) -> None:
        self.lookups.close()
        self.rules.close()

    # -- MAIL FROM and RCPT TO (envelope_checks.py) ------------------------

    def check_sender(self, client: ClientInfo, sender: str, size_hint: int | None) -> Decision:
        """The answer to MAIL FROM (may read the database)."""
        return self.checks.check_sender(client, sender, size_hint)

    def check_sender_now(
        self, client: ClientInfo, sender: str, size_hint: int | None
    ) -> Decision | None:
        """check_sender from memory, safe on an event loop; None when it cannot be."""
        return self.checks.check_sender_now(client, sender, size_hint)

    def check_recipient(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None]:
        """The answer to RCPT TO and whom it reaches (may read the database)."""
        return self.checks.check_recipient(client, sender, address, size_hint)

    def check_recipient_now(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None] | None:
        """check_recipient from memory, safe on an event loop; None when it cannot be."""
        return self.checks.check_recipient_now(client, sender, address, size_hint)

    # -- end of DATA -----------------------------------------------------

    def accept(self, envelope: Envelope, content: MessageSource) -> Decision:
        """Store for local mailboxes and queue for remote ones; 250 only when durable."""
        job = self._begin(envelope, content)
        if isinstance(job, Decision):
            return job
        head = message_head(content)
        job, replies = self._apply_rules(envelope, head, content, job)
        plan = None
        if job.remote:
            assert self.queue is not None
            plan = plan_outbound(self.lookups, self.srs, envelope, head, job.notify)
            # Checked before anything is stored: an envelope the queue would
            # refuse must not leave local copies behind (a retry would
            # store another each time).
            try:
                self.queue.check_envelope(
                    plan.sender, job.remote, client=envelope.client,
                    dsn_envid=envelope.dsn_envid, dsn_ret=plan.ret,
                    notify=plan.notify, orcpt=job.orcpt,
                )
            except ValueError as exc:
                refused = Decision(554, "5.5.4", f"Transaction refused: {exc}")
                self._log_all(job.msg_id, job.sender, job.all_rcpts, job.size, "rejected", refused)
                return refused
        stored: list[Any] = []
        try:
            if job.items:
                stored = self.store.store(job.items)
            if plan is not None:
                assert self.queue is not None
                self.queue.enqueue(
                    plan.sender,
                    job.remote,
                    with_prefix(job.received, content),
                    client=envelope.client,
                    dsn_envid=envelope.dsn_envid,
                    dsn_ret=plan.ret,
                    notify=plan.notify,
                    orcpt=job.orcpt,
                    sign_domain=plan.sign_domain,
                )
        except Exception as exc:
            if stored:
                self._withdraw(job, stored)
            return self._failed(job, exc)
        done = self._done(job)
        self._send_replies(replies, envelope.sender, head)
        return done

    def _withdraw(self, job: Acceptance, stored: list[Any]) -> None:
        """Take back the local copies of a message whose queueing failed (it gets 4xx).

        The client will send it again; without this every retry would leave
        one more copy in the local mailboxes.
        """
        for item, message in zip(job.items, stored, strict=False):
            try:
                self.store.expunge(message.account_id, item.folder, [message.uid])
            except Exception:
                log.exception("%s: local copy %s kept; a retry will duplicate it",
                              job.msg_id, message.uidl)

    def _apply_rules(
        self, envelope: Envelope, head: bytes, content: MessageSource, job: Acceptance
    ) -> tuple[Acceptance, list[tuple[Account, Any]]]:
        """Forwarding (remote recipients added, copies dropped) and vacation replies due."""
        if not job.local:
            return job, []
        outcome = self.rules.apply(envelope.sender, head, job.local)
        if not outcome.forwards and len(outcome.keep) == len(job.local):
            return job, outcome.replies
        job = forwarded(job, outcome.keep, outcome.forwards, content, self.checks,
                        queueing=self.queue is not None, clock=self.clock)
        return job, outcome.replies

    def _send_replies(
        self, replies: list[tuple[Account, Any]], sender: str, head: bytes
    ) -> None:
        """Vacation replies, from the null sender, through this same way in."""
        for account, vacation in replies:
            try:
                reply = self.rules.vacation_message(account, vacation, sender, head,
                                                    self.hostname)
                self.lookups.refresh()
                target = self.checks.resolve(sender)
                client = ClientInfo(ip="127.0.0.1", helo=self.hostname, protocol="LOCAL")
                decision = self.accept(Envelope(sender="", recipients=(target,), client=client),
                                       reply)
                if not decision.accepted:
                    log.warning("vacation reply of %s to %s refused: %s", account.address,
                                sender, decision.text)
            except Exception:
                log.exception("vacation reply of %s to %s failed", account.address, sender)

    def accept_now(
        self, envelope: Envelope, content: MessageSource
    ) -> PendingAcceptance | None:
        """accept() without blocking the caller, for event loops.

        Only the message files are written here. Once `stored` is done (it
        completes on the index writer's thread), `decision()` on the
        caller's thread gives the answer: a 2xx only when the message is
        durable and indexed. None here, or a decision of None, when this
        cannot be done without blocking (mail to remote addresses, a mailbox
        not delivered to yet, a folder that vanished): nothing was stored,
        call accept() in a worker thread.
        """
        if (
            not isinstance(content, bytes)
            or envelope.client.auth_user is not None
            or _remote_or_quota(envelope)
        ):
            # A spooled message is copied in a worker thread, never on the loop.
            # The From: check and quota usage read the database: a worker thread's job.
            return None
        job = self._begin(envelope, content)
        if isinstance(job, Decision):
            return PendingAcceptance(self, None, _done_future(), job)
        # The rules as of the generation read at this message's RCPT (rules.py).
        generation = self.lookups.generation
        if job.local and self.rules.may_apply_now(job.local, generation) is not False:
            return None  # forwarding or a vacation reply (or unsure): the blocking path
        try:
            stored = self.store.submit(job.items)
        except Exception as exc:
            return PendingAcceptance(self, None, _done_future(), self._failed(job, exc))
        if stored is None:
            return None
        return PendingAcceptance(self, job, stored, None)

    def _begin(self, envelope: Envelope, content: MessageSource) -> Acceptance | Decision:
        """The checks at end of data, then what to store and queue (or the refusal)."""
        size = len(content)
        head = message_head(content)
        decision = limits.check_size(size, self.settings.max_message_size)
        if decision.accepted:
            decision = loops.check_hops(loops.count_received(head), self.settings.max_hops)
        if decision.accepted and envelope.client.auth_user is not None:
            decision = check_authors(self.lookups, envelope.client.auth_user, head)
        now = self.clock()
        msg_id = new_message_id(now)
        all_rcpts = [r.address for r in envelope.recipients]
        if not decision.accepted:
            self._log_all(msg_id, envelope.sender, all_rcpts, size, "rejected", decision)
            return decision
        local, remote, notify, orcpt = split_recipients(envelope)
        refusal = quota_refusal(self.store, local, bool(remote), size)
        if refusal is not None:
            self._log_all(msg_id, envelope.sender, all_rcpts, size, "rejected", refusal)
            return refusal
        single = all_rcpts[0] if len(all_rcpts) == 1 else None
        received = received_header(envelope.client, self.hostname, msg_id, single, now)
        trace = return_path(envelope.sender)
        items = [
            NewMessage(
                account=account,
                folder="INBOX",
                prefix=trace + delivered_to(account.address) + received,
                content=content,
                internal_date=int(now),
                dot_lines=envelope.dot_lines,
            )
            for account in local
        ]
        return Acceptance(
            msg_id, envelope.sender, all_rcpts, size, local, remote, items, received, notify, orcpt
        )

    def _failed(self, job: Acceptance, exc: Exception) -> Decision:
        if isinstance(exc, StoreError):
            log.error("store failed for %s: %s", job.msg_id, exc)
        else:
            log.error("accepting %s failed", job.msg_id, exc_info=exc)
        self._log_all(job.msg_id, job.sender, job.all_rcpts, job.size, "deferred", TEMP_FAILURE)
        return TEMP_FAILURE

    def _done(self, job: Acceptance) -> Decision:
        for account in job.local:
            self.log.write(job.msg_id, job.sender, account.address, job.size, "stored", "250 2.0.0")
        for address in job.remote:
            self.log.write(job.msg_id, job.sender, address, job.size, "queued", "250 2.0.0")
        return Decision(250, "2.0.0", f"Ok: queued as {job.msg_id}")

    def _log_all(
        self, msg_id: str, sender: str, rcpts: list[str], size: int, result: str, d: Decision
    ) -> None:
        reply = f"{d.code} {d.enhanced} {d.text}"
        for rcpt in rcpts:
            self.log.write(msg_id, sender, rcpt, size, result, reply)
