"""Bodies in the queue directory without rows: rebuild them, or set them aside.

After an OS crash the last SQL commits may be gone while the bodies they
acknowledged are on disk (flushed before the rows, see enqueue_batch). A
body carrying its envelope (queue/envelope_line.py) gets its rows back and
is delivered as if nothing happened; one without (written before the
envelope line existed, or damaged) is moved to `corrupt/` for the admin.

A body younger than `rebuild_age` is left alone: its rows may be a
transaction in flight in another process.

Two leftovers of a kill -9 are removed here too (tests/test_serve_kill_queue.py
kills the whole server while it delivers). The crash ordering relied on:
enqueue writes `.<id>.tmp`, flushes, renames it to `<id>.eml`, flushes the
directory, commits the rows, answers 250; a delivery commits `delivered`
(recorder.py, bookkeeping.py), then unlinks the body. So a `.tmp` file
older than `rebuild_age` belongs to a message never acknowledged, and a
body whose rows are all finished (delivered or failed) was killed between
that COMMIT and its unlink: nothing needs it. Such a body used to stay until
the hourly sweep purged its rows days later and this module then moved it
to `corrupt/` as a body without rows, a false alarm for the admin. The scheduler calls this at
start and then every few minutes, so a body orphaned by a crash leaves
within minutes of the restart, not at the next one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from nmail.queue import envelope_line
from nmail.queue.row_locks import chunks
from nmail.queue.rows import MessageInfo, NewRecipient
from nmail.queue.spool import Spool, UnreadableBody
from nmail.queue.store import QueueStore

log = logging.getLogger(__name__)

# Seconds a body without rows waits before its rows are rebuilt (a
# transaction in flight commits within a second; a stalled one is allowed
# a lock timeout or two).
REBUILD_AGE = 120.0
# A body without rows and without an envelope waits this long before it
# is set aside (the admin may still be moving files by hand).
ORPHAN_AGE = 3600.0


@dataclass(slots=True)
class RecoveryReport:
    rebuilt: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # finished bodies, stale temporaries


def recover(
    spool: Spool,
    store: QueueStore,
    *,
    now: float | None = None,
    next_attempt: int | None = None,
    rebuild_age: float = REBUILD_AGE,
    orphan_age: float = ORPHAN_AGE,
    give_up_after: float | None = None,
) -> RecoveryReport:
    """Rebuild the rows of bodies that lost them; set aside what cannot be rebuilt.

    A body whose envelope is older than `give_up_after` is not sent again:
    its rows would have expired by now, so it is more likely a finished
    message whose body outlived its rows than one lost in a crash.
    """
    report = RecoveryReport()
    wall = time.time() if now is None else now
    report.removed += spool.remove_stale_temporaries(min(rebuild_age, orphan_age), wall)
    stored = spool.stored_ids()
    if not stored:
        return report
    known = store.known_ids(stored)
    for chunk in chunks(sorted(known), 500):
        for queue_id in store.finished(chunk):
            spool.remove(queue_id)
            report.removed.append(queue_id)
            log.info("queue: body %s of a finished message removed (a crash came "
                     "between its last delivery's commit and the removal)", queue_id)
    due = int(wall) if next_attempt is None else next_attempt
    for queue_id in stored:
        if queue_id in known:
            continue
        age = spool.age(queue_id, wall)
        if age < min(rebuild_age, orphan_age):
            continue
        try:
            line, size = spool.read_envelope(queue_id)
        except UnreadableBody:
            continue  # removed meanwhile (delivered, deleted)
        entry = _entry(line, queue_id, size, wall, give_up_after)
        if entry is not None:
            message, rcpts = entry
            try:
                store.insert(message, rcpts, due)
            except IntegrityError:
                continue  # its rows were committed meanwhile (another node)
            report.rebuilt.append(queue_id)
            log.warning(
                "queue: body %s had no queue entry (lost in a crash?); rebuilt %d "
                "recipient(s) from its envelope", queue_id, len(rcpts),
            )
            continue
        if age < orphan_age:
            continue
        target = spool.move_aside(queue_id)
        if target is not None:
            report.moved.append(queue_id)
            log.error("queue: body %s has no queue entry; moved to %s", queue_id, target)
    return report


def _entry(
    line: bytes | None, queue_id: str, size: int, now: float, give_up_after: float | None
) -> tuple[MessageInfo, list[NewRecipient]] | None:
    """The rows to rebuild from an envelope line, or None (none, unreadable, too old)."""
    if line is None:
        return None
    try:
        message, rcpts = envelope_line.decode(line, queue_id, size)
    except envelope_line.BadEnvelope as exc:
        log.error("queue: body %s: %s", queue_id, exc)
        return None
    if give_up_after is not None and now - message.created_at > give_up_after:
        return None  # would have expired by now: a finished message's leftover body
    return message, rcpts
