"""Recording what an attempt did, recipient by recipient (runs in a worker thread).

Order matters for the "never lost" promise: a notice is sent before the
recipient is marked failed, and a body is deleted only once no recipient
of its message is pending. A crash in between repeats work (a duplicate
notice or delivery), it never skips it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from nmail.bounce import texts
from nmail.bounce.dsn import RecipientReport
from nmail.bounce.outbound_log import Refusal, RefusalLog, refusal, worth_recording
from nmail.config import QueueSettings
from nmail.queue import notice_original
from nmail.queue.backoff import expired, next_attempt_at
from nmail.queue.notice_original import Quoted
from nmail.queue.notices import Notifier, wants
from nmail.queue.outcomes import DELIVERED, PERMANENT, Outcome
from nmail.queue.spool import Spool
from nmail.queue.store import MessageInfo, QueueStore, RecipientInfo

log = logging.getLogger("nmail.queue")


class Bookkeeper:
    """Turns outcomes into row states, notices and body clean-up."""

    def __init__(
        self,
        store: QueueStore,
        spool: Spool,
        notifier: Notifier,
        settings: QueueSettings,
        clock: Callable[[], float],
        refusals: RefusalLog | None = None,
    ) -> None:
        self._refusals = refusals
        self._store = store
        self._spool = spool
        self._notifier = notifier
        self._settings = settings
        self._clock = clock

    def settle(
        self,
        message: MessageInfo,
        rows: Sequence[RecipientInfo],
        outcomes: Sequence[Outcome],
        body: bytes | None,
        token: str,
    ) -> None:
        """Record one attempt for `rows` (outcomes align with rows)."""
        now = self._clock()
        failed: list[tuple[RecipientInfo, Outcome, RecipientReport]] = []
        retry: dict[tuple[str | None, str], dict[int, int]] = {}
        delayed: list[RecipientReport] = []
        relayed: list[RecipientReport] = []
        done: dict[tuple[str | None, str], list[int]] = {}
        refused: list[Refusal] = []
        gave_up = expired(now, message.created_at, self._settings)
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome.kind == DELIVERED:
                done.setdefault((outcome.remote_host, outcome.reply), []).append(row.id)
                if wants(row.notify, "SUCCESS") and not outcome.remote_dsn:
                    relayed.append(_report(row, outcome, "relayed", now))
            elif outcome.kind == PERMANENT:
                failed.append((row, outcome, _report(row, outcome, "failed", now)))
                refused.append(_refusal(message, row, outcome, now, final=True))
            elif gave_up:
                diagnostic = f"{texts.EXPIRED}. Last error: {outcome.reply}"
                status = outcome.status if not outcome.status.endswith(".0.0") else "4.4.7"
                report = RecipientReport(
                    row.address, "failed", status, diagnostic, outcome.remote_host, now,
                    row.orcpt,
                )
                failed.append((row, outcome, report))
                refused.append(_refusal(message, row, outcome, now, final=True))
            else:
                item = _refusal(message, row, outcome, now, final=False)
                if worth_recording(item, row.attempts + 1):
                    refused.append(item)
                when = next_attempt_at(now, message.created_at, row.attempts + 1, self._settings)
                retry.setdefault((outcome.remote_host, outcome.reply), {})[row.id] = when
                delayed.append(
                    _report(row, outcome, "delayed", now,
                            until=message.created_at + self._settings.give_up_after)
                )
        for (host, reply), ids in done.items():
            self._store.mark_delivered(ids, host, reply)
        quoted: list[Quoted] = []  # read once, when a notice first needs it

        def original() -> Quoted:
            if not quoted:
                quoted.append(self._quote(message, body))
            return quoted[0]

        if failed:
            self._notifier.send(message, rows, [f[2] for f in failed], original(), now)
            for row, outcome, report in failed:
                self._store.mark_failed([row.id], outcome.remote_host, report.diagnostic or "")
        for (host, reply), schedule in retry.items():
            self._store.mark_retry(schedule, token, host, reply)
        if delayed and self._warning_due(message, now) and self._store.take_warning(message.id):
            self._notifier.send(message, rows, delayed, original(), now)
        if relayed:
            self._notifier.send(message, rows, relayed, original(), now)
        self._record_refusals(refused)
        self.finish_if_done(message.id)

    def _record_refusals(self, refused: Sequence[Refusal]) -> None:
        """Classified refusals for `nmail bounce report`; a failure here costs no mail."""
        if not refused or self._refusals is None:
            return
        try:
            self._refusals.record(refused)
        except Exception as exc:
            log.error("queue: could not record %d refusal(s) for the report: %s",
                      len(refused), exc)

    def finish_if_done(self, message_id: str) -> None:
        """Delete the body once every recipient is delivered or failed."""
        if self._store.pending_count(message_id) == 0:
            self._spool.remove(message_id)

    def set_aside(self, message: MessageInfo, error: str) -> None:
        """An unreadable entry: move its body aside, mark it corrupt, say so loudly."""
        moved = self._spool.move_aside(message.id)
        where = f"moved to {moved}" if moved else "no body file to move"
        text = f"unreadable queue entry ({error}); {where}"
        self._store.mark_corrupt(message.id, text)
        log.error("queue %s from <%s>: %s", message.id, message.sender, text)

    def admin_bounces(self, token: str) -> int:
        """Bounce what `nmail queue bounce` marked; returns recipients bounced."""
        if not self._store.has_bouncing():
            return 0
        now = int(self._clock())
        claim = self._store.claim_bounces(now, 200, token, now + self._settings.lease_seconds)
        by_message: dict[str, list[RecipientInfo]] = {}
        for row in claim.recipients:
            by_message.setdefault(row.message_id, []).append(row)
        count = 0
        for message_id, rows in by_message.items():
            message = claim.messages.get(message_id)
            if message is not None and self.admin_bounce(message, rows):
                count += len(rows)
            else:
                # This process cannot deliver the notice (e.g. the CLI and a local
                # sender): leave it to the next pass of a serving node.
                self._store.release_bouncing([row.id for row in rows], claim.token)
        return count

    def admin_bounce(self, message: MessageInfo, rows: Sequence[RecipientInfo]) -> bool:
        """Fail `rows` with a notice, at the admin's request; False if it must wait."""
        if not self._notifier.can_deliver_now(message):
            return False
        now = self._clock()
        reports = [
            RecipientReport(
                row.address, "failed", "5.0.0",
                f"{texts.ADMIN_BOUNCE} / {texts.ADMIN_BOUNCE_KO}", row.remote_host, now,
                row.orcpt,
            )
            for row in rows
        ]
        self._notifier.send(message, rows, reports, self._quote(message, None), now)
        self._store.mark_failed([row.id for row in rows], None, texts.ADMIN_BOUNCE)
        self.finish_if_done(message.id)
        return True

    def _warning_due(self, message: MessageInfo, now: float) -> bool:
        after = self._settings.delay_warning_after
        if after <= 0 or after >= self._settings.give_up_after or message.warned:
            return False
        return now - message.created_at >= after

    def _quote(self, message: MessageInfo, body: bytes | None) -> Quoted:
        """What a notice quotes of the message: from `body` when it was read to be sent,
        else from its file (or the one set aside in corrupt/), reading only that part."""
        full = (message.dsn_ret or "").upper() == "FULL"
        if body is not None:
            return notice_original.from_bytes(body, full)
        for path in (self._spool.path(message.id), self._spool.corrupt_path(message.id)):
            try:
                return notice_original.from_file(path, full)
            except OSError:
                continue
        return Quoted(b"", 0, full)


def _refusal(
    message: MessageInfo, row: RecipientInfo, outcome: Outcome, now: float, *, final: bool
) -> Refusal:
    return refusal(
        message.id, row.address, outcome.reply, outcome.status, outcome.remote_host,
        permanent=final, at=now,
    )


def _report(
    row: RecipientInfo, outcome: Outcome, action: str, now: float, until: float | None = None
) -> RecipientReport:
    return RecipientReport(
        recipient=row.address,
        action=action,
        status=outcome.status if action != "relayed" else "2.0.0",
        diagnostic=outcome.reply or None,
        remote_host=outcome.remote_host,
        last_attempt=now,
        original_recipient=row.orcpt,
        will_retry_until=until,
    )
