"""The outbound queue: durable intake of remote mail and its management.

`OutboundQueue.enqueue` is what the intake calls (from worker threads)
for non-local recipients: it signs the message with DKIM when the sender
is ours, writes the body once to DIR/queue/<id>.eml, commits one row per
message and one per recipient, and returns only when all of that is
durable. `run()` delivers (see scheduler.py); `list_entries`, `show`,
`retry`, `delete` and `bounce` serve `nmail queue`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nmail.bounce.outbound_log import RefusalLog
from nmail.config import Config
from nmail.dns.resolver import MailResolver
from nmail.durable import fsync_dir
from nmail.message_source import MessageSource, message_head, with_prefix
from nmail.queue import content as wire
from nmail.queue.bookkeeping import Bookkeeper
from nmail.queue.dkim import DkimError, DkimKeys, sign
from nmail.queue.enqueue_batch import EnqueueBatcher
from nmail.queue.errors import QueueEntryNotFound, QueueInputError
from nmail.queue.notices import LocalBounce, Notifier
from nmail.queue.queue_entry import BounceResult, QueueEntry
from nmail.queue.recovery import ORPHAN_AGE, REBUILD_AGE, recover
from nmail.queue.routing import Router
from nmail.queue.scheduler import Scheduler
from nmail.queue.spool import Spool, new_queue_id, valid_queue_id
from nmail.queue.store import (
    MessageInfo,
    NewRecipient,
    QueueStore,
    RecipientInfo,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from nmail.delivery.envelope import ClientInfo

log = logging.getLogger("nmail.queue")

def default_node_id() -> str:
    """This machine's name, cleaned to what a lease owner may contain."""
    return _clean_node_id(socket.gethostname())


def _clean_node_id(value: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", value)[:40]
    return cleaned or "node"


class OutboundQueue:
    """The spool of mail for other domains, its scheduler and its management."""

    def __init__(
        self,
        engine: Engine,
        queue_dir: Path,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        resolver: MailResolver | None = None,
        local_bounce: LocalBounce | None = None,
        node_id: str | None = None,
        is_local_domain: Callable[[str], bool] | None = None,
        dkim: DkimKeys | None = None,
        return_path: Callable[[str], str] | None = None,
    ) -> None:
        self.config = config
        self.store = QueueStore(engine)
        self.spool = Spool(queue_dir)
        self._intake = EnqueueBatcher(self.spool, self.store)
        self._clock = clock
        self._is_local = is_local_domain or (lambda _domain: False)
        self._dkim = dkim if dkim is not None else (
            DkimKeys(engine) if is_local_domain is not None else None
        )
        self.resolver = resolver or MailResolver(config.nameservers, clock=clock)
        self.node_id = _clean_node_id(node_id) if node_id else default_node_id()
        notifier = Notifier(
            config.hostname,
            is_local_domain=self._is_local,
            local_bounce=local_bounce,
            enqueue_bounce=lambda sender, rcpts, data: self.enqueue(
                sender, rcpts, data, is_bounce=True
            ),
            return_path=return_path,
        )
        self._books = Bookkeeper(
            self.store, self.spool, notifier, config.queue, clock, RefusalLog(engine)
        )
        self._scheduler = Scheduler(
            store=self.store,
            spool=self.spool,
            router=Router(config, self.resolver),
            resolver=self.resolver,
            books=self._books,
            settings=config.queue,
            hostname=config.hostname,
            clock=clock,
            node_id=self.node_id,
        )

    # -- intake -------------------------------------------------------------

    def enqueue(
        self,
        sender: str,
        recipients: Sequence[str],
        content: MessageSource,
        *,
        client: ClientInfo | None = None,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        notify: Sequence[str | None] | None = None,
        orcpt: Sequence[str | None] | None = None,
        is_bounce: bool = False,
        sign_domain: str | None = None,
    ) -> str:
        """Queue `content` for `recipients`; returns the queue id once durable.

        Only `sign_domain` (when hosted) DKIM-signs, or for our own notices
        (`is_bounce`) their From: domain: the caller decides whom the
        message may speak for (delivery/submission.py), never its From:.
        Raises QueueInputError (and stores nothing) for an envelope value with
        CR, LF or another control character, or a malformed address.
        """
        rows = self.check_envelope(
            sender, recipients, client=client, dsn_envid=dsn_envid, dsn_ret=dsn_ret,
            notify=notify, orcpt=orcpt,
        )
        auth_user = client.auth_user if client is not None else None
        client_ip = client.ip if client is not None else None
        # A large message stays in its spool file: it is signed by a
        # streaming body hash and copied into the queue by the kernel.
        body = wire.wire_ready(content)
        if is_bounce:
            sign_domain = wire.from_domain(message_head(body))
        if sign_domain:
            body = with_prefix(self._dkim_sign(sign_domain, body), body)
        queue_id = new_queue_id()
        now = self._clock()
        message = MessageInfo(
            id=queue_id, sender=sender, size=len(body), created_at=int(now),
            is_bounce=is_bounce, dsn_envid=dsn_envid,
            dsn_ret=dsn_ret.upper() if dsn_ret else None, warned=False,
            auth_user=auth_user, client_ip=client_ip,
        )
        # Durable (body and rows) before returning; shared with concurrent callers.
        self._intake.commit(message, rows, int(now), body)
        log.info(
            "queue %s: from <%s> to %s, %d bytes%s", queue_id, sender,
            ", ".join(f"<{r.address}>" for r in rows), len(body), " (bounce)" if is_bounce else "",
        )
        self._scheduler.wake()
        return queue_id

    def check_envelope(
        self,
        sender: str,
        recipients: Sequence[str],
        *,
        client: ClientInfo | None = None,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        notify: Sequence[str | None] | None = None,
        orcpt: Sequence[str | None] | None = None,
    ) -> list[NewRecipient]:
        """The recipient rows for an envelope; QueueInputError if any value is unfit.

        No I/O: a caller that stores local copies too asks this first, so a
        refused envelope leaves nothing committed anywhere.
        """
        wire.check_address(sender, "sender", allow_null=True)
        if not recipients:
            raise QueueInputError("no recipients")
        if notify is not None and len(notify) != len(recipients):
            raise QueueInputError("notify must have one entry per recipient")
        if orcpt is not None and len(orcpt) != len(recipients):
            raise QueueInputError("orcpt must have one entry per recipient")
        rows: list[NewRecipient] = []
        seen: set[str] = set()
        for i, rcpt in enumerate(recipients):
            wire.check_address(rcpt, "recipient")
            note = wire.check_notify(notify[i] if notify is not None else None)
            original = orcpt[i] if orcpt is not None else None
            if original is not None:
                wire.check_text(original, "ORCPT", 320)
            key = rcpt.lower()
            if key in seen:  # two aliases to one outside address: send it once
                continue
            seen.add(key)
            rows.append(NewRecipient(rcpt, wire.address_domain(rcpt), note, original))
        if dsn_envid is not None:
            wire.check_text(dsn_envid, "ENVID", 100)
        if dsn_ret is not None and dsn_ret.upper() not in ("FULL", "HDRS"):
            raise QueueInputError("RET must be FULL or HDRS")
        if client is not None and client.auth_user is not None:
            wire.check_text(client.auth_user, "auth user", 320)
        if client is not None and client.ip is not None:
            wire.check_text(client.ip, "client address", 64)
        return rows

    def _dkim_sign(self, domain: str, body: MessageSource) -> bytes:
        """The DKIM-Signature header for hosted `domain` (key made if missing), or b""."""
        if self._dkim is None or not self._is_local(domain):
            return b""
        selector = self.config.dkim_selector
        pem = self._dkim.get(domain, selector)
        if pem is None:
            # Every hosted domain signs, however it was created (CLI, API, admin UI).
            try:
                pem = self._dkim.ensure(domain, selector)
            except KeyError:
                return b""
        try:
            return sign(body, domain, selector, pem)
        except DkimError as exc:
            log.warning("queue: not DKIM-signing for %s: %s", domain, exc)
        return b""

    # -- running --------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until stop(); cancel the task to simulate a crash."""
        await asyncio.to_thread(self.recover)
        await self._scheduler.run()

    async def stop(self) -> None:
        """Finish the messages being sent, give back the rest, return."""
        await self._scheduler.stop()

    def wake(self) -> None:
        """Make the scheduler look at the queue now (thread-safe)."""
        self._scheduler.wake()

    @property
    def inflight(self) -> int:
        return self._scheduler.inflight

    @property
    def passes(self) -> int:
        """Looks at the queue this node's scheduler has completed (only grows)."""
        return self._scheduler.passes

    @property
    def stopping(self) -> bool:
        """True once stop() was called (the scheduler is winding down or done)."""
        return self._scheduler.stopping

    async def settled(self) -> int:
        """Wait until this node has nothing due left to try; see Scheduler.settled."""
        return await self._scheduler.settled()

    def recover(
        self, *, orphan_age: float = ORPHAN_AGE, rebuild_age: float = REBUILD_AGE
    ) -> list[str]:
        """Rebuild rows lost in a crash from the bodies' envelopes; returns ids set aside."""
        report = recover(
            self.spool, self.store, next_attempt=int(self._clock()),
            rebuild_age=rebuild_age, orphan_age=orphan_age,
            give_up_after=self.config.queue.give_up_after,
        )
        if report.rebuilt:
            self.wake()
        return report.moved

    # -- management -----------------------------------------------------------

    def list_entries(self) -> list[QueueEntry]:
        """Every message not yet finished (queued, in delivery, corrupt, bouncing)."""
        return [self._entry(msg, rows) for msg, rows in self.store.pending_messages()]

    def show(self, queue_id: str) -> QueueEntry:
        """One entry, finished or not; QueueEntryNotFound if unknown."""
        message = self._message(queue_id)
        return self._entry(message, self.store.recipients(queue_id))

    def retry(self, queue_id: str | None = None) -> int:
        """Make queued recipients (of one entry, or all) due now; returns how many."""
        now = int(self._clock())
        if queue_id is None:
            count = self.store.reschedule(None, now)
        else:
            self._message(queue_id)
            count = self.store.reschedule(queue_id, now)
            if self.spool.restore(queue_id):
                count += self.store.requeue_corrupt(queue_id, now)
        self.wake()
        return count

    def delete(self, queue_id: str) -> None:
        """Remove an entry and its body without any notice."""
        self._message(queue_id)
        # The body first: rows without a body are reported as corrupt, while a
        # body without rows would be rebuilt from its envelope and sent after all.
        self.spool.remove(queue_id)
        fsync_dir(self.spool.directory)  # and durably gone, before the rows go
        self.store.delete(queue_id)
        self.spool.corrupt_path(queue_id).unlink(missing_ok=True)
        log.warning("queue %s: deleted by the administrator", queue_id)

    def bounce(self, queue_id: str) -> BounceResult:
        """Return an entry to its sender now with a failure notice."""
        self._message(queue_id)
        marked = self.store.mark_bouncing(queue_id, "bounce requested by the administrator")
        sent = self._scheduler.process_bounces() if marked else 0
        self.wake()
        return BounceResult(marked, sent)

    def _message(self, queue_id: str) -> MessageInfo:
        if not valid_queue_id(queue_id):
            raise QueueEntryNotFound(queue_id)
        message = self.store.message(queue_id)
        if message is None:
            raise QueueEntryNotFound(queue_id)
        return message

    def _entry(self, message: MessageInfo, rows: list[RecipientInfo]) -> QueueEntry:
        path: Path | None = None
        for candidate in (self.spool.path(message.id), self.spool.corrupt_path(message.id)):
            if candidate.exists():
                path = candidate
                break
        return QueueEntry(message, tuple(rows), path)
