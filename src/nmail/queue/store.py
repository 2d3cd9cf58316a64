"""The queue's rows: one per message, one per recipient with its own state.

Recipient states: queued (waiting for next_attempt), delivering (leased by
a node until lease_until), delivered, failed, corrupt (body unreadable,
moved aside), bouncing (the admin asked for a bounce; the notice is not
sent yet). Claims use `SELECT ... FOR UPDATE SKIP LOCKED` where the
database has it, so several nodes never hold the same recipient.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

from nmail.db.tables import queue_messages, queue_recipients
from nmail.queue.entry_queries import EntryQueries
from nmail.queue.row_locks import (
    LOCK_CHUNK,
    chunks,
    lock_in_id_order,
    row_locks,
    update_in_id_order,
)
from nmail.queue.rows import (
    BOUNCING,
    CORRUPT,
    DELIVERED,
    DELIVERING,
    FAILED,
    FINAL_STATES,
    MESSAGE_COLUMNS,
    PENDING_STATES,
    QUEUED,
    RECIPIENT_COLUMNS,
    Claim,
    MessageInfo,
    NewRecipient,
    RecipientInfo,
    message_from,
    recipient_from,
)

__all__ = [
    "BOUNCING", "CORRUPT", "DELIVERED", "DELIVERING", "FAILED", "FINAL_STATES",
    "PENDING_STATES", "QUEUED", "Claim", "MessageInfo", "NewRecipient", "QueueStore",
    "RecipientInfo",
]

_OPEN_STATES = PENDING_STATES
m = queue_messages
r = queue_recipients
_SQLITE_LOCKS: dict[str, threading.Lock] = {}


class QueueStore(EntryQueries):
    """All SQL of the outbound queue."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._skip_locked = engine.dialect.name in ("postgresql", "mysql", "mariadb")
        # SQLite has one writer; its busy handler sleeps in growing steps when
        # our own threads collide, so they queue on a lock here instead.
        self._write_lock = _SQLITE_LOCKS.setdefault(
            str(engine.url), threading.Lock()
        ) if engine.dialect.name == "sqlite" else None

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    # -- intake -------------------------------------------------------------

    def insert(
        self, message: MessageInfo, recipients: Sequence[NewRecipient], next_attempt: int
    ) -> None:
        """The message row and its recipient rows, in one transaction."""
        self.insert_many([(message, recipients, next_attempt)])

    def insert_many(
        self, entries: Sequence[tuple[MessageInfo, Sequence[NewRecipient], int]]
    ) -> None:
        """Several messages with their recipients, all in one transaction."""
        if not entries:
            return
        with self._writing() as conn:
            conn.execute(
                m.insert(),
                [
                    {
                        "id": message.id, "sender": message.sender, "size": message.size,
                        "created_at": message.created_at, "auth_user": message.auth_user,
                        "client_ip": message.client_ip, "is_bounce": message.is_bounce,
                        "dsn_envid": message.dsn_envid, "dsn_ret": message.dsn_ret,
                        "warned": False,
                    }
                    for message, _, _ in entries
                ],
            )
            conn.execute(
                r.insert(),
                [
                    {
                        "message_id": message.id, "recipient": rcpt.address,
                        "domain": rcpt.domain, "state": QUEUED, "attempts": 0,
                        "next_attempt": next_attempt, "dsn_notify": rcpt.notify,
                        "orcpt": rcpt.orcpt,
                    }
                    for message, recipients, next_attempt in entries
                    for rcpt in recipients
                ],
            )

    # -- leases ---------------------------------------------------------------

    def release_node(self, node_id: str) -> int:
        """At start-up: our own leases from a previous run go back to queued.

        Another node's reap may sweep the same rows (our leases ran out while we
        were down): both lock in id order (queue/row_locks.py).
        """
        ours = r.c.lease_owner.like(f"{node_id}/%")
        with self._writing() as conn:
            if row_locks(conn):
                lock_in_id_order(conn, [r.c.state.in_((DELIVERING, BOUNCING)), ours])
            result = conn.execute(
                update(r)
                .where(r.c.state == DELIVERING, ours)
                .values(state=QUEUED, lease_owner=None, lease_until=None)
            )
            bouncing = conn.execute(
                update(r)
                .where(r.c.state == BOUNCING, ours)
                .values(lease_owner=None, lease_until=None)
            )
        return int(result.rowcount or 0) + int(bouncing.rowcount or 0)

    def reap_expired(self, now: int) -> int:
        """Leases that ran out (a node died mid-delivery) go back to queued."""
        with self._writing() as conn:
            return update_in_id_order(
                conn, [r.c.state == DELIVERING, r.c.lease_until < now],
                {"state": QUEUED, "lease_owner": None, "lease_until": None},
            )

    def claim(self, now: int, limit: int, token: str, lease_until: int) -> Claim:
        """Lease up to `limit` due recipients to `token`."""
        due = and_(r.c.state == QUEUED, r.c.next_attempt <= now)
        return self._claim(due, r.c.next_attempt, now, limit, token, lease_until, DELIVERING)

    def claim_bounces(self, now: int, limit: int, token: str, lease_until: int) -> Claim:
        """Lease recipients the admin asked to bounce (state stays 'bouncing')."""
        free = and_(
            r.c.state == BOUNCING, or_(r.c.lease_until.is_(None), r.c.lease_until < now)
        )
        return self._claim(free, r.c.id, now, limit, token, lease_until, BOUNCING)

    def _claim(
        self, where: ColumnElement[bool], order: Any, now: int, limit: int, token: str,
        lease_until: int, new_state: str,
    ) -> Claim:
        # Not in id order, and need not be: the pick skips locked rows and never
        # waits, and the UPDATE changes only rows the pick holds.
        values = {"state": new_state, "lease_owner": token, "lease_until": lease_until}
        with self._writing() as conn:
            picked = select(r.c.id).where(where).order_by(order).limit(limit)
            if self._skip_locked:
                ids = list(conn.execute(picked.with_for_update(skip_locked=True)).scalars())
                if ids:
                    conn.execute(update(r).where(r.c.id.in_(ids), where).values(**values))
            else:
                # SQLite: one statement, so the pick and the lease are atomic.
                conn.execute(
                    update(r).where(r.c.id.in_(picked.scalar_subquery()), where).values(**values)
                )
            return self._claimed(conn, token, new_state)

    def _claimed(self, conn: Connection, token: str, state: str) -> Claim:
        rows = conn.execute(
            select(*RECIPIENT_COLUMNS)
            .where(r.c.lease_owner == token, r.c.state == state)
            .order_by(r.c.message_id, r.c.id)
        ).all()
        recipients = tuple(recipient_from(row) for row in rows)
        message_ids = sorted({rc.message_id for rc in recipients})
        messages: dict[str, MessageInfo] = {}
        for chunk in chunks(message_ids, 500):
            for row in conn.execute(select(*MESSAGE_COLUMNS).where(m.c.id.in_(chunk))):
                info = message_from(row)
                messages[info.id] = info
        return Claim(token, messages, recipients)

    def renew(self, ids: Sequence[int], token: str, lease_until: int) -> set[int]:
        """Extend our lease; returns the ids we still hold."""
        if not ids:
            return set()
        mine = r.c.lease_owner == token
        with self._writing() as conn:
            if row_locks(conn):
                # Our rows whose lease ran out are what another node's reap sweeps:
                # id order (row_locks.py); the locking read is also the answer.
                held = lock_in_id_order(conn, [mine], ids)
                for chunk in chunks(held, LOCK_CHUNK):
                    conn.execute(update(r).where(r.c.id.in_(chunk)).values(lease_until=lease_until))
                return set(held)
            conn.execute(update(r).where(r.c.id.in_(ids), mine).values(lease_until=lease_until))
            return set(conn.execute(select(r.c.id).where(r.c.id.in_(ids), mine)).scalars())

    def release(self, ids: Sequence[int], token: str) -> None:
        """Give leased recipients back untouched (a stopping node's unstarted work)."""
        if not ids:
            return
        with self._writing() as conn:
            update_in_id_order(
                conn, [r.c.lease_owner == token, r.c.state == DELIVERING],
                {"state": QUEUED, "lease_owner": None, "lease_until": None}, ids,
            )

    def release_bouncing(self, ids: Sequence[int], token: str) -> None:
        """Hand admin bounces back for a node that can deliver the notice."""
        if not ids:
            return
        with self._writing() as conn:
            update_in_id_order(
                conn, [r.c.lease_owner == token, r.c.state == BOUNCING],
                {"lease_owner": None, "lease_until": None}, ids,
            )

    # -- outcomes -------------------------------------------------------------

    def mark_delivered(self, ids: Iterable[int], remote_host: str | None, reply: str) -> None:
        """Delivered, even if our lease was taken meanwhile: the remote said 250."""
        self._set_final(ids, DELIVERED, remote_host, reply, None)

    def mark_delivered_batch(self, batch: Sequence[tuple[Sequence[int], str | None, str]]) -> None:
        """Many (ids, remote_host, reply) deliveries in one transaction, one statement.

        The rows are updated in id order, not the batch's: two nodes whose leases
        on the same recipients ran out may both deliver them and finish in other
        orders, and in batch order each held a row the other waited for (a
        deadlock, its victim's deliveries unrecorded and sent again). Each
        update is a statement of its own (executemany), so the order is ours.
        """
        params = sorted((
            {"rid": rid, "reply": reply[:2000], "host": _host(remote_host)}
            for ids, remote_host, reply in batch
            for rid in ids
        ), key=_by_rid)
        if not params:
            return
        with self._writing() as conn:
            conn.execute(_DELIVERED_MANY, params)

    def finished(self, message_ids: Sequence[str]) -> list[str]:
        """Those of `message_ids` with no recipient pending any more."""
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return []
        with self.engine.connect() as conn:
            busy = set(
                conn.execute(
                    select(r.c.message_id)
                    .where(r.c.message_id.in_(ids), r.c.state.in_(PENDING_STATES))
                    .distinct()
                ).scalars()
            )
        return [mid for mid in ids if mid not in busy]

    def mark_failed(
        self, ids: Iterable[int], remote_host: str | None, error: str, token: str | None = None
    ) -> None:
        self._set_final(ids, FAILED, remote_host, error, token)

    def _set_final(
        self, ids: Iterable[int], state: str, remote_host: str | None, text: str,
        token: str | None,
    ) -> None:
        """Without a token this reaches rows another node leased meanwhile, which
        its own writes lock in id order: so do these (queue/row_locks.py)."""
        id_list = list(ids)
        if not id_list:
            return
        where: list[ColumnElement[bool]] = [r.c.state.in_(_OPEN_STATES)]
        if token is not None:
            where.append(r.c.lease_owner == token)
        with self._writing() as conn:
            update_in_id_order(conn, where, {
                "state": state, "last_error": text[:2000], "remote_host": _host(remote_host),
                "lease_owner": None, "lease_until": None, "attempts": r.c.attempts + 1,
            }, id_list)

    def mark_retry(
        self, schedule: dict[int, int], token: str, remote_host: str | None, error: str
    ) -> None:
        """Back to queued with next_attempt per recipient id ({id: when})."""
        if not schedule:
            return
        mine = [r.c.state == DELIVERING, r.c.lease_owner == token]
        with self._writing() as conn:
            # Only our lease's rows match, but once it ran out another node's reap
            # sweeps them too: one locking read takes them in id order first
            # (row_locks.py); then one UPDATE per retry time, as before.
            ordered = row_locks(conn) and len(schedule) > 1
            held = set(lock_in_id_order(conn, mine, schedule)) if ordered else None
            by_time: dict[int, list[int]] = {}
            for rid, when in schedule.items():
                if held is None or rid in held:
                    by_time.setdefault(when, []).append(rid)
            for when, id_list in by_time.items():
                conn.execute(
                    update(r)
                    .where(r.c.id.in_(id_list), *mine)
                    .values(
                        state=QUEUED, next_attempt=when, last_error=error[:2000],
                        remote_host=_host(remote_host), lease_owner=None, lease_until=None,
                        attempts=r.c.attempts + 1,
                    )
                )

    def mark_corrupt(self, message_id: str, error: str) -> None:
        with self._writing() as conn:
            update_in_id_order(
                conn, [r.c.message_id == message_id, r.c.state.in_((QUEUED, DELIVERING))],
                {"state": CORRUPT, "last_error": error[:2000], "lease_owner": None,
                 "lease_until": None},
            )

    def take_warning(self, message_id: str) -> bool:
        """True exactly once per message: whoever flips `warned` sends the delay notice."""
        with self._writing() as conn:
            result = conn.execute(
                update(m).where(m.c.id == message_id, m.c.warned.is_(False)).values(warned=True)
            )
        return bool(result.rowcount)

    def pending_count(self, message_id: str) -> int:
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count())
                .select_from(r)
                .where(r.c.message_id == message_id, r.c.state.in_(PENDING_STATES))
            ).scalar_one()
        return int(count)

    def next_due(self) -> int | None:
        """The earliest next_attempt of a queued recipient, or None."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.min(r.c.next_attempt)).where(r.c.state == QUEUED)
            ).scalar_one_or_none()
        return None if value is None else int(value)

    def has_bouncing(self) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(r.c.id).where(r.c.state == BOUNCING).limit(1)).first()
        return row is not None

# One prepared UPDATE for the batch path (executemany), built once.
_DELIVERED_MANY = (
    update(r)
    .where(r.c.id == bindparam("rid"), r.c.state != DELIVERED, r.c.state != FAILED)
    .values(
        state=DELIVERED, last_error=bindparam("reply"), remote_host=bindparam("host"),
        lease_owner=None, lease_until=None, attempts=r.c.attempts + 1,
    )
)


def _by_rid(params: dict[str, Any]) -> int:
    return int(params["rid"])


def _host(value: str | None) -> str | None:
    return None if value is None else value[:255]
