"""The one way in: checks at MAIL/RCPT time and acceptance at end of data.

Every front door (SMTP, submission, webmail send, bounces) talks to this
class. It is synchronous; asyncio servers call it through an executor.
Decisions come from `policy` (pure functions); this class gathers the facts
they need (directory lookups, quota usage) and carries out the result
(store locally, queue remotely, log).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from nmail.config import SmtpSettings
from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.delivery.log import DeliveryLog
from nmail.delivery.trace import delivered_to, new_message_id, received_header, return_path
from nmail.directory import Directory
from nmail.directory.errors import DirectoryError
from nmail.directory.model import Account, Resolution
from nmail.mailstore.store import MailStore, NewMessage, StoreError
from nmail.policy import limits, loops, recipients, relay, senders
from nmail.policy.decision import ACCEPT, Decision

log = logging.getLogger(__name__)

TEMP_FAILURE = Decision(451, "4.3.0", "Temporary local error, please try again later")


class Queue(Protocol):
    """What the intake needs of the outbound queue."""

    def enqueue(
        self,
        sender: str,
        recipients: Sequence[str],
        content: bytes,
        *,
        client: ClientInfo | None = None,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        notify: Sequence[str | None] | None = None,
        orcpt: Sequence[str | None] | None = None,
        is_bounce: bool = False,
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """The result of an authentication attempt, for any protocol."""

    ok: bool
    account: Account | None
    reason: str  # "ok", "failed", "disabled", "locked"
    delay: float  # seconds the front door should wait before answering a failure


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
    ) -> None:
        self.directory = directory
        self.store = store
        self.queue = queue
        self.settings = settings
        self.hostname = hostname
        self.log = delivery_log
        self.clock = clock

    # -- MAIL FROM -------------------------------------------------------

    def check_sender(self, client: ClientInfo, sender: str, size_hint: int | None) -> Decision:
        decision = limits.check_size(size_hint or 0, self.settings.max_message_size)
        if not decision.accepted:
            return decision
        if client.auth_user:
            owned = self.directory.sender_addresses(client.auth_user)
            return senders.check_sender_owned(sender, owned)
        return ACCEPT

    # -- RCPT TO ---------------------------------------------------------

    def check_recipient(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None]:
        try:
            resolution = self.directory.resolve(address)
        except DirectoryError as exc:
            return Decision(501, "5.1.3", f"Bad recipient address syntax: {exc}"), None
        if not resolution.hosted:
            decision = relay.check_relay(
                client_ip=client.ip,
                authenticated=client.auth_user is not None,
                relay_networks=self.directory.relay_networks(),
            )
            if decision.accepted and self.queue is None:
                return Decision(451, "4.3.2", "Outbound delivery is not available"), None
            return decision, resolution if decision.accepted else None
        if resolution.unknown:
            return recipients.unknown_user(address), None
        checked: list[Account] = []
        first_refusal: Decision | None = None
        for account in resolution.accounts:
            decision = recipients.check_account(
                address=account.address,
                receive_enabled=account.receive_enabled,
                sender_rejected=bool(sender) and self.directory.is_rejected(account, sender),
                usage=self.store.usage(account.id) if account.quota_bytes else 0,
                quota=account.quota_bytes,
                size_hint=size_hint or 0,
            )
            if decision.accepted:
                checked.append(account)
            elif first_refusal is None:
                first_refusal = decision
        if not checked and not resolution.remote:
            assert first_refusal is not None
            return first_refusal, None
        # An alias fanning out to several mailboxes delivers to those that can take it.
        kept = Resolution(resolution.address, True, tuple(checked), resolution.remote)
        if kept.remote and self.queue is None:
            return Decision(451, "4.3.2", "Outbound delivery is not available"), None
        return ACCEPT, kept

    # -- end of DATA -----------------------------------------------------

    def accept(self, envelope: Envelope, content: bytes) -> Decision:
        """Store for local mailboxes and queue for remote ones; 250 only when durable."""
        size = len(content)
        decision = limits.check_size(size, self.settings.max_message_size)
        if decision.accepted:
            decision = loops.check_hops(loops.count_received(content), self.settings.max_hops)
        msg_id = new_message_id(self.clock())
        all_rcpts = [r.address for r in envelope.recipients]
        if not decision.accepted:
            self._log_all(msg_id, envelope.sender, all_rcpts, size, "rejected", decision)
            return decision
        now = self.clock()
        local, remote = self._split(envelope)
        single = all_rcpts[0] if len(all_rcpts) == 1 else None
        received = received_header(envelope.client, self.hostname, msg_id, single, now)
        items = [
            NewMessage(
                account=account,
                folder="INBOX",
                prefix=return_path(envelope.sender) + delivered_to(account.address) + received,
                content=content,
                internal_date=int(now),
            )
            for account in local
        ]
        try:
            if items:
                self.store.store(items)
            if remote:
                assert self.queue is not None
                self.queue.enqueue(
                    envelope.sender,
                    remote,
                    received + content,
                    client=envelope.client,
                    dsn_envid=envelope.dsn_envid,
                    dsn_ret=envelope.dsn_ret,
                )
        except StoreError as exc:
            log.error("store failed for %s: %s", msg_id, exc)
            self._log_all(msg_id, envelope.sender, all_rcpts, size, "deferred", TEMP_FAILURE)
            return TEMP_FAILURE
        except Exception:
            log.exception("accepting %s failed", msg_id)
            self._log_all(msg_id, envelope.sender, all_rcpts, size, "deferred", TEMP_FAILURE)
            return TEMP_FAILURE
        done = Decision(250, "2.0.0", f"Ok: queued as {msg_id}")
        for account in local:
            self.log.write(msg_id, envelope.sender, account.address, size, "stored", "250 2.0.0")
        for address in remote:
            self.log.write(msg_id, envelope.sender, address, size, "queued", "250 2.0.0")
        return done

    def _split(self, envelope: Envelope) -> tuple[list[Account], list[str]]:
        """Local mailboxes (each once) and remote addresses (each once)."""
        seen: set[int] = set()
        local: list[Account] = []
        remote: list[str] = []
        seen_remote: set[str] = set()
        for resolution in envelope.recipients:
            for account in resolution.accounts:
                if account.id not in seen:
                    seen.add(account.id)
                    local.append(account)
            for address in resolution.remote:
                if address.lower() not in seen_remote:
                    seen_remote.add(address.lower())
                    remote.append(address)
        return local, remote

    def _log_all(
        self, msg_id: str, sender: str, rcpts: list[str], size: int, result: str, d: Decision
    ) -> None:
        reply = f"{d.code} {d.enhanced} {d.text}"
        for rcpt in rcpts:
            self.log.write(msg_id, sender, rcpt, size, result, reply)
