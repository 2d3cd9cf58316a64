"""Jobs: the messages one connection will carry, and getting them ready.

A claim's recipients for one destination are cut into jobs: spread over
the connections the destination may have, at most MAX_MESSAGES_PER_JOB
messages or MAX_JOB_BYTES bytes each. Preparing a job (in a worker thread)
renews its lease when it is getting old, reads the bodies, sets
unreadable ones aside, and builds one envelope per message (per 100
recipients).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from nmail.config import QueueSettings
from nmail.queue.bookkeeping import Bookkeeper
from nmail.queue.outcomes import MAX_RECIPIENTS_PER_TRANSACTION, Outgoing
from nmail.queue.routing import Route
from nmail.queue.spool import Spool, UnreadableBody
from nmail.queue.store import Claim, MessageInfo, QueueStore, RecipientInfo

MAX_MESSAGES_PER_JOB = 50  # messages one connection carries before it is closed
MAX_JOB_BYTES = 32 * 1024 * 1024

# The body for notices: None for one sent from its file (read again only if
# a notice needs it, as bookkeeping does for any body it was not given).
Meta = dict[int, tuple[MessageInfo, tuple[RecipientInfo, ...], bytes | None]]


@dataclass(frozen=True, slots=True)
class JobItem:
    """One message and its recipients in this job."""

    message: MessageInfo
    rows: tuple[RecipientInfo, ...]


@dataclass(slots=True)
class Job:
    """Work for one connection, and what is still open of it."""

    route: Route
    token: str
    items: list[JobItem]
    open_ids: set[int] = field(default_factory=set)
    renewed_at: float = 0.0
    commits: list[asyncio.Future[None]] = field(default_factory=list)


def plan_jobs(
    route: Route,
    claim: Claim,
    messages: dict[str, list[RecipientInfo]],
    settings: QueueSettings,
    now: float,
) -> list[Job]:
    """Cut one destination's share of a claim into jobs."""
    items = [JobItem(claim.messages[mid], tuple(rows)) for mid, rows in messages.items()]
    # Spread over the connections a destination may have, then cap each one.
    limit = max(1, settings.max_connections_per_domain)
    per_job = max(1, min(MAX_MESSAGES_PER_JOB, -(-len(items) // limit)))
    jobs: list[Job] = []
    current: list[JobItem] = []
    size = 0
    for item in items:
        if current and (len(current) >= per_job or size + item.message.size > MAX_JOB_BYTES):
            jobs.append(_job(route, claim.token, current, now))
            current, size = [], 0
        current.append(item)
        size += item.message.size
    if current:
        jobs.append(_job(route, claim.token, current, now))
    return jobs


def _job(route: Route, token: str, items: list[JobItem], now: float) -> Job:
    ids = {row.id for item in items for row in item.rows}
    return Job(route, token, items, ids, now)


def prepare_job(
    job: Job,
    store: QueueStore,
    spool: Spool,
    books: Bookkeeper,
    settings: QueueSettings,
    clock: Callable[[], float],
) -> tuple[list[Outgoing], Meta]:
    """Envelopes and bodies for the job's messages (thread); see the module docstring."""
    if clock() - job.renewed_at >= settings.lease_seconds / 3:
        now = int(clock())
        job.open_ids &= store.renew(sorted(job.open_ids), job.token, now + settings.lease_seconds)
        job.renewed_at = clock()
    held = set(job.open_ids)
    outgoing: list[Outgoing] = []
    meta: Meta = {}
    for item in job.items:
        rows = tuple(row for row in item.rows if row.id in held)
        if not rows:
            continue
        try:
            body = spool.read_for_sending(item.message.id, item.message.size)
        except UnreadableBody as exc:
            books.set_aside(item.message, str(exc))
            job.open_ids.difference_update(row.id for row in rows)
            continue
        for start in range(0, len(rows), MAX_RECIPIENTS_PER_TRANSACTION):
            chunk = rows[start : start + MAX_RECIPIENTS_PER_TRANSACTION]
            out = Outgoing(
                queue_id=item.message.id,
                sender=item.message.sender,
                recipients=tuple(row.address for row in chunk),
                body=body,
                notify=tuple(row.notify for row in chunk),
                orcpt=tuple(row.orcpt for row in chunk),
                envid=item.message.dsn_envid,
                ret=item.message.dsn_ret,
                tags=tuple(row.id for row in chunk),
            )
            outgoing.append(out)
            meta[id(out)] = (item.message, chunk, body if isinstance(body, bytes) else None)
    return outgoing, meta
