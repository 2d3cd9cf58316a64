"""Reading and changing whole queue entries: what `nmail queue` needs."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from sqlalchemy import ColumnElement, Connection, Engine, func, select

from nmail.queue.row_locks import chunks, lock_in_id_order, row_locks, update_in_id_order
from nmail.queue.rows import (
    BOUNCING,
    CORRUPT,
    MESSAGE_COLUMNS,
    PENDING_STATES,
    QUEUED,
    RECIPIENT_COLUMNS,
    MessageInfo,
    RecipientInfo,
    m,
    message_from,
    r,
    recipient_from,
)


class EntryQueries:
    """Mixed into QueueStore: listing, retry, delete, bounce marking, purge."""

    engine: Engine

    def _writing(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def message(self, message_id: str) -> MessageInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*MESSAGE_COLUMNS).where(m.c.id == message_id)).first()
        return None if row is None else message_from(row)

    def recipients(self, message_id: str) -> list[RecipientInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*RECIPIENT_COLUMNS).where(r.c.message_id == message_id).order_by(r.c.id)
            ).all()
        return [recipient_from(row) for row in rows]

    def pending_messages(self) -> list[tuple[MessageInfo, list[RecipientInfo]]]:
        """Every message with a recipient not yet delivered or failed, oldest first."""
        with self.engine.connect() as conn:
            ids = select(r.c.message_id).where(r.c.state.in_(PENDING_STATES)).distinct()
            msg_rows = conn.execute(
                select(*MESSAGE_COLUMNS).where(m.c.id.in_(ids)).order_by(m.c.created_at, m.c.id)
            ).all()
            rcpt_rows = conn.execute(
                select(*RECIPIENT_COLUMNS).where(r.c.message_id.in_(ids)).order_by(r.c.id)
            ).all()
        by_message: dict[str, list[RecipientInfo]] = {}
        for row in rcpt_rows:
            info = recipient_from(row)
            by_message.setdefault(info.message_id, []).append(info)
        return [(message_from(row), by_message.get(str(row[0]), [])) for row in msg_rows]

    def pending_counts(self) -> tuple[int, int, int | None]:
        """(messages, recipients) not yet delivered or failed, and the oldest such
        message's arrival time: the admin overview's figures, in two counting queries."""
        with self.engine.connect() as conn:
            recipients = int(conn.execute(select(func.count()).select_from(r)
                                          .where(r.c.state.in_(PENDING_STATES))).scalar_one())
            ids = select(r.c.message_id).where(r.c.state.in_(PENDING_STATES)).distinct()
            messages, oldest = conn.execute(
                select(func.count(), func.min(m.c.created_at)).where(m.c.id.in_(ids))).one()
        return int(messages), recipients, None if oldest is None else int(oldest)

    def reschedule(self, message_id: str | None, now: int) -> int:
        """Queued recipients (of one message, or all) become due now."""
        where: list[ColumnElement[bool]] = [r.c.state == QUEUED]
        if message_id is not None:
            where.append(r.c.message_id == message_id)
        with self._writing() as conn:  # rows in id order (row_locks.py), as every sweep
            return update_in_id_order(conn, where, {"next_attempt": now})

    def requeue_corrupt(self, message_id: str, now: int) -> int:
        with self._writing() as conn:
            return update_in_id_order(
                conn, [r.c.message_id == message_id, r.c.state == CORRUPT],
                {"state": QUEUED, "next_attempt": now,
                 "last_error": "restored by the administrator"},
            )

    def mark_bouncing(self, message_id: str, reason: str) -> int:
        """Pending recipients (not in flight) get state 'bouncing'."""
        with self._writing() as conn:
            return update_in_id_order(
                conn, [r.c.message_id == message_id, r.c.state.in_((QUEUED, CORRUPT))],
                {"state": BOUNCING, "last_error": reason, "lease_owner": None,
                 "lease_until": None},
            )

    def delete(self, message_id: str) -> bool:
        """The entry's rows, recipients (locked in id order: a node may be recording
        some of them right now) before the message."""
        with self._writing() as conn:
            if row_locks(conn):
                lock_in_id_order(conn, [r.c.message_id == message_id])
            conn.execute(r.delete().where(r.c.message_id == message_id))
            result = conn.execute(m.delete().where(m.c.id == message_id))
        return bool(result.rowcount)

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(list(ids), 500):
                found.update(conn.execute(select(m.c.id).where(m.c.id.in_(chunk))).scalars())
        return found

    def purge_finished(self, created_before: int) -> int:
        """Delete messages older than the cut-off whose recipients are all final."""
        with self._writing() as conn:
            pending = select(r.c.message_id).where(r.c.state.in_(PENDING_STATES))
            old = list(
                conn.execute(
                    select(m.c.id)
                    .where(m.c.created_at < created_before, m.c.id.not_in(pending))
                    .order_by(m.c.id)
                ).scalars()
            )
            if row_locks(conn):
                # Every node purges: their recipient rows all locked in id order
                # first (row_locks.py), so two purges, or a purge and a delete,
                # queue on the first row they share.
                rows: list[int] = []
                for chunk in chunks(old, 500):
                    rows.extend(conn.execute(
                        select(r.c.id).where(r.c.message_id.in_(chunk))).scalars())
                lock_in_id_order(conn, [], rows)
            for chunk in chunks(old, 500):
                conn.execute(r.delete().where(r.c.message_id.in_(chunk)))
                conn.execute(m.delete().where(m.c.id.in_(chunk)))
        return len(old)

