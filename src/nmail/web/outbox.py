"""Sending from the webmail: through the one way in, then Sent, then the original's mark.

The webmail is one more front door, an authenticated submission from the
logged-in user: `Intake.check_sender` applies the same sender rules as SMTP
AUTH (the user may only send as an address they own), each recipient goes
through `check_recipient` (local mailboxes stored, remote ones queued, no
relay for anyone else), and `accept` answers only once the message is
durable. Then a copy (with Bcc) goes to Sent and the original gets
`\\Answered` or `$Forwarded`. Those last two are after the fact: when they
fail the message has still gone, so they are logged, not reported as a
failed send. Blocking: the web app calls this in its thread pool.

A message whose files come to more than SPOOL_PAST is written once into an
unnamed file under the spool directory (mime/compose_spool.py) and handed on
as a `SpooledMessage`, like a large message that came by SMTP: the recipients'
copy and the Sent (or Drafts) copy are that one file behind two header
sections. Smaller ones are built in memory, as before. A forwarded message counts
with the files: the stored original is copied into the spool file from its own
file (mime/compose_spool.py), never read whole.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.delivery.intake import Intake
from nmail.directory.model import Account
from nmail.mailstore.store import MailStore, StoreError
from nmail.message_source import MessageSource, SpooledMessage
from nmail.mime.compose_spool import spool_message
from nmail.mime.composing import Outgoing, build_message, new_message_id
from nmail.policy.decision import Decision

log = logging.getLogger(__name__)

Mark = Literal["answered", "forwarded", ""]
SPOOL_PAST = 1 << 20  # attachments past this go through a spool file, never whole in memory
_FLAGS = {"answered": "\\Answered", "forwarded": "$Forwarded"}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a send did not happen: which address (or "" for the whole message), the reply."""

    address: str
    code: int
    text: str
    status: str = ""  # the enhanced status code ("5.1.1"), "" when there is none


@dataclass(frozen=True, slots=True)
class SendResult:
    sent: bool
    refusals: tuple[Refusal, ...] = ()
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class Original:
    """The message a reply or forward answers, to be marked once the send is done."""

    folder: str
    uid: int
    mark: Mark


class Outbox:
    """Sends and saves drafts for webmail users."""

    def __init__(self, intake: Intake, store: MailStore, hostname: str,
                 spool_dir: Path | None = None) -> None:
        self._intake = intake
        self._store = store
        self._hostname = hostname
        self._spool_dir = spool_dir

    @contextmanager
    def _built(self, out: Outgoing, *, recipients: bool = True
               ) -> Iterator[tuple[MessageSource, MessageSource]]:
        """(what the recipients get, or b"" when not `recipients`; the copy kept, with
        Bcc); see the module docstring."""
        if sum(item.size for item in out.files) + sum(map(_size, out.attached_messages)) \
                > SPOOL_PAST:
            with self.spool_file() as file:
                parts = spool_message(out, file, hostname=self._hostname)
                if parts is not None:
                    yield (SpooledMessage(file, parts.size, parts.head),
                           SpooledMessage(file, parts.size, parts.head_bcc))
                    return
        yield (build_message(out, hostname=self._hostname) if recipients else b"",
               build_message(out, hostname=self._hostname, include_bcc=True))

    def spool_file(self) -> IO[bytes]:
        """An unnamed file in the spool directory (for a message, or an attachment
        decoded on its way into one): its blocks go when it is closed."""
        if self._spool_dir is not None:
            self._spool_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=self._spool_dir)

    def send(self, account: Account, out: Outgoing, client_ip: str,
             original: Original | None = None) -> SendResult:
        """Check every address, hand the message to delivery, keep a copy in Sent."""
        client = ClientInfo(ip=client_ip or "127.0.0.1", helo="webmail", protocol="HTTP",
                            auth_user=account.address)
        # One Message-ID and Date for what recipients get and for the copy in Sent.
        out = replace(out, message_id=out.message_id or new_message_id(self._hostname))
        with self._built(out) as (content, copy):
            return self._send(account, out, client, content, copy, original)

    def _send(self, account: Account, out: Outgoing, client: ClientInfo,
              content: MessageSource, copy: MessageSource,
              original: Original | None) -> SendResult:
        sender = out.sender[1]
        decision = self._intake.check_sender(client, sender, len(content))
        if not decision.accepted:
            return SendResult(False, (_refusal(sender, decision),))
        recipients = list(dict.fromkeys(addr.lower() for _, addr in (*out.to, *out.cc, *out.bcc)))
        if not recipients:
            return SendResult(False, (Refusal("", 554, "no recipients"),))
        limit = self._intake.settings.max_recipients
        if len(recipients) > limit:
            return SendResult(False, (Refusal("", 452, f"more than {limit} recipients"),))
        resolutions = []
        refusals = []
        for address in recipients:
            verdict, resolution = self._intake.check_recipient(client, sender, address,
                                                               len(content))
            if not verdict.accepted or resolution is None:
                refusals.append(_refusal(address, verdict))
            else:
                resolutions.append(resolution)
        if refusals:
            return SendResult(False, tuple(refusals))  # all or nothing: the user fixes and resends
        envelope = Envelope(sender=sender, recipients=tuple(resolutions), client=client)
        accepted = self._intake.accept(envelope, content)
        if not accepted.accepted:
            return SendResult(False, (_refusal("", accepted),))
        self._keep_copy(account, copy)
        if original is not None and original.mark:
            self._mark(account, original)
        return SendResult(True, (), out.message_id)

    def save_draft(self, account: Account, out: Outgoing, replaces: int | None = None) -> int:
        """Store the draft in Drafts (and drop the one it replaces); its new UID.

        StoreError (QuotaExceeded...) when it cannot be kept: the old draft stays."""
        with self._built(out, recipients=False) as (_content, copy):
            stored = self._store.append(account, "Drafts", copy, flags=("\\Draft", "\\Seen"))
        if replaces is not None:
            self.discard_draft(account, replaces)
        return stored.uid

    def discard_draft(self, account: Account, uid: int) -> None:
        try:
            self._store.expunge(account.id, "Drafts", [uid])
        except StoreError as exc:
            log.warning("could not remove draft %s of %s: %s", uid, account.address, exc)

    def _keep_copy(self, account: Account, copy: MessageSource) -> None:
        try:
            self._store.append(account, "Sent", copy, flags=("\\Seen",))
        except StoreError as exc:
            log.error("sent, but no copy in Sent for %s: %s", account.address, exc)

    def _mark(self, account: Account, original: Original) -> None:
        try:
            self._store.set_flags(account.id, original.folder, [original.uid],
                                  add=frozenset({_FLAGS[original.mark]}))
        except StoreError as exc:
            log.warning("sent, but could not mark the original: %s", exc)


def _size(data: bytes | IO[bytes]) -> int:
    return len(data) if isinstance(data, bytes) else os.fstat(data.fileno()).st_size


def _refusal(address: str, decision: Decision) -> Refusal:
    return Refusal(address, decision.code, decision.text, decision.enhanced)
