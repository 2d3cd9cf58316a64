"""The refusals our own queue meets, classified and kept for `nmail bounce report`.

The queue hears every remote refusal first hand, so it need not wait for a
bounce to be read: each refusal worth an administrator's attention is
classified with the same rule table as incoming bounces and written to
`bounce_events`, a table of its own because the queue forgets finished
messages after `[queue] keep_finished`. Worth attention: every permanent
refusal and every final failure; a temporary refusal whose words name a
cause (IP blocked for bulk sending, RBL, mailbox full...) at once, since a
big provider blocking the server is news from its first reply; a plain
temporary failure from the recipient's second attempt on, as one
greylisting 451 is normal. The table is pruned after `KEEP_SECONDS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, delete, func, insert, select

from nmail.bounce import catalogue
from nmail.bounce.categories import TEMPORARY
from nmail.bounce.replies import reply_codes
from nmail.bounce.rules import classify
from nmail.db.tables import bounce_events

log = logging.getLogger("nmail.bounce")

KEEP_SECONDS = 90 * 86400
_PRUNE_EVERY = 3600
_REPLY_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Refusal:
    """One remote refusal of one recipient."""

    occurred_at: int
    queue_id: str
    recipient: str
    category: str
    status: str
    reply: str
    remote_host: str | None
    permanent: bool

    @property
    def domain(self) -> str:
        return self.recipient.rpartition("@")[2].lower()


def refusal(
    queue_id: str, recipient: str, reply: str, status: str, remote_host: str | None,
    *, permanent: bool, at: float,
) -> Refusal:
    """Classify one refusal the queue received (`status` is the queue's RFC 3463 code)."""
    codes = reply_codes(reply)
    return Refusal(
        occurred_at=int(at), queue_id=queue_id, recipient=recipient,
        category=classify(codes.code, codes.status or status, reply),
        status=status, reply=reply[:_REPLY_CHARS], remote_host=remote_host,
        permanent=permanent,
    )


def worth_recording(item: Refusal, attempt: int) -> bool:
    """Permanent, final or telling refusals; a bare temporary one from the second attempt."""
    return item.permanent or item.category != TEMPORARY or attempt >= 2


@dataclass(frozen=True, slots=True)
class ReportLine:
    """Refusals of one category by one destination domain within the period."""

    domain: str
    category: str
    messages: int  # distinct (message, recipient) pairs refused
    refusals: int  # every refusal, retries included
    permanent: int  # refusals that were permanent
    first: int
    last: int
    last_reply: str
    last_host: str

    def to_dict(self) -> dict[str, Any]:
        entry = catalogue.category(self.category)
        return {
            "domain": self.domain, "category": self.category,
            "title_en": entry.title_en, "title_ko": entry.title_ko,
            "messages": self.messages, "refusals": self.refusals,
            "permanent": self.permanent, "first": self.first, "last": self.last,
            "last_reply": self.last_reply, "last_host": self.last_host,
        }


class RefusalLog:
    """Writes and summarizes `bounce_events`."""

    def __init__(self, engine: Engine, *, keep_seconds: int = KEEP_SECONDS) -> None:
        self._engine = engine
        self._keep = keep_seconds
        self._last_prune = 0.0

    def record(self, refusals: Sequence[Refusal]) -> None:
        """Store refusals (and now and then forget those past the keep period)."""
        if not refusals:
            return
        rows = [
            {
                "occurred_at": r.occurred_at, "queue_id": r.queue_id[:40],
                "recipient": r.recipient[:320], "domain": r.domain[:253],
                "category": r.category, "status": r.status[:16], "reply": r.reply,
                "remote_host": r.remote_host[:255] if r.remote_host else None,
                "permanent": r.permanent,
            }
            for r in refusals
        ]
        with self._engine.begin() as conn:
            conn.execute(insert(bounce_events), rows)
        now = time.monotonic()
        if now - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = now
            self.prune(max(r.occurred_at for r in refusals) - self._keep)

    def prune(self, before: int) -> int:
        """Forget refusals older than `before`; returns how many."""
        with self._engine.begin() as conn:
            result = conn.execute(delete(bounce_events).where(bounce_events.c.occurred_at < before))
        return int(result.rowcount or 0)

    def report(self, since: int) -> list[ReportLine]:
        """Refusals since `since` by domain and category, the most messages first."""
        t = bounce_events.c
        grouped = (
            select(t.domain, t.category, t.queue_id, t.recipient, func.count(),
                   func.min(t.occurred_at), func.max(t.occurred_at),
                   func.sum(case((t.permanent, 1), else_=0)))
            .where(t.occurred_at >= since)
            .group_by(t.domain, t.category, t.queue_id, t.recipient)
        )
        totals: dict[tuple[str, str], list[int]] = {}
        with self._engine.connect() as conn:
            for domain, category, _qid, _rcpt, count, first, last, permanent in conn.execute(
                grouped
            ):
                entry = totals.setdefault((domain, category), [0, 0, 0, first, last])
                entry[0] += 1
                entry[1] += int(count)
                entry[2] += int(permanent or 0)
                entry[3] = min(entry[3], int(first))
                entry[4] = max(entry[4], int(last))
            lines = []
            for (domain, category), (messages, count, permanent, first, last) in totals.items():
                latest = conn.execute(
                    select(t.reply, t.remote_host)
                    .where(t.domain == domain, t.category == category, t.occurred_at >= since)
                    .order_by(t.occurred_at.desc(), t.id.desc())
                    .limit(1)
                ).first()
                lines.append(ReportLine(
                    domain, category, messages, count, permanent, first, last,
                    latest[0] if latest else "", (latest[1] or "") if latest else "",
                ))
        lines.sort(key=lambda line: (-line.messages, line.domain, line.category))
        return lines
