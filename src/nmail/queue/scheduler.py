"""The delivery loop: claim due recipients, group them, deliver, record.

One asyncio task runs `Scheduler.run()`. Each pass does the periodic
sweeps that are due (queue/chores.py), leases due recipients (state
delivering, lease_until in the future), routes their domains and groups
them by destination (queue/claim_routes.py) so one connection carries
every message and recipient for the same servers, and starts one task per
connection, bounded per destination and in total. Database and file work
runs in worker threads; the loop only waits.

Time comes from an injectable clock and the loop can be woken from any
thread, so tests move time forward instead of sleeping. To see that
nothing happens, a test awaits `settled()` (a quiet pass, defined there)
rather than guessing how long the loop needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from nmail.config import QueueSettings
from nmail.dns.resolver import MailResolver
from nmail.queue.bookkeeping import Bookkeeper
from nmail.queue.chores import Chores
from nmail.queue.claim_routes import route_claim
from nmail.queue.jobs import Job, plan_jobs, prepare_job
from nmail.queue.notices import wants
from nmail.queue.outcomes import DELIVERED, Outcome, Outgoing
from nmail.queue.quiet import QuietPasses, SchedulerStopped
from nmail.queue.recorder import DeliveryRecorder
from nmail.queue.route_delivery import deliver_over_route
from nmail.queue.routing import Router
from nmail.queue.session_cache import SessionCache
from nmail.queue.smtp_client import TlsContexts
from nmail.queue.spool import Spool
from nmail.queue.store import Claim, QueueStore, RecipientInfo

log = logging.getLogger("nmail.queue")

CLAIM_BATCH = 500  # recipients leased per pass
MAX_INFLIGHT = 2000  # recipients leased and not yet recorded, per node
POLL_SECONDS = 10.0  # real seconds between looks at the database when idle
STOP_GRACE = 30.0  # real seconds a stop waits for connections in progress


class _Stopping(Exception):
    """Raised between two messages of a job when the node is stopping."""


class Scheduler:
    """Runs deliveries for one node."""

    def __init__(
        self,
        *,
        store: QueueStore,
        spool: Spool,
        router: Router,
        resolver: MailResolver,
        books: Bookkeeper,
        settings: QueueSettings,
        hostname: str,
        clock: Callable[[], float],
        node_id: str,
    ) -> None:
        self._store = store
        self._spool = spool
        self._router = router
        self._resolver = resolver
        self._books = books
        self._settings = settings
        self._hostname = hostname
        self._clock = clock
        self._node_id = node_id
        self._run_id = secrets.token_hex(3)
        self._seq = 0
        self._tls: TlsContexts | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._stopped: asyncio.Event | None = None
        # Which run a stop() is for: the one in progress, or the next one when none
        # is (runs are counted as they end), so a stop asked before run() began
        # ends that run, and a run after a stopped one is not ended by its stop.
        self._runs_ended = 0
        self._stop_for_run: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight = 0
        self._chores = Chores(store, spool, settings, self.process_bounces)
        self._global: asyncio.Semaphore | None = None
        self._sessions = SessionCache()  # idle connections for the next job (run() renews it)
        self._connected_jobs = 0  # jobs holding or opening a connection
        self._per_destination: dict[tuple[object, ...], asyncio.Semaphore] = {}
        self._destination_jobs: dict[tuple[object, ...], int] = {}
        self._recorder = DeliveryRecorder(store, spool)
        self._passes = QuietPasses()

    @property
    def inflight(self) -> int:
        """Recipients leased by this node and not yet recorded."""
        return self._inflight

    @property
    def passes(self) -> int:
        """Looks at the queue completed since this scheduler was made (only grows)."""
        return self._passes.done

    @property
    def stopping(self) -> bool:
        """True once stop() was called, until the next run()."""
        return self._stopping

    async def settled(self) -> int:
        """Wait for a quiet pass and return its number (see `passes`).

        A quiet pass began after this call, so it read the clock as it is
        now; it claimed nothing; and when it ended no delivery task of this
        node was in progress. So everything this node could send at that
        clock time has been tried and its outcome recorded. Rows leased by
        another node, and rows due later, are left alone. Wakes the
        scheduler so the pass happens at once. Await it on the scheduler's
        event loop; it may be awaited before run() starts. Raises
        SchedulerStopped (nmail.queue.quiet) if the scheduler has ended or
        ends first; callers bound the wait.
        """
        if self._stopped is not None and self._stopped.is_set():
            raise SchedulerStopped("the queue scheduler is not running")
        return await self._passes.wait(self.wake)

    def wake(self) -> None:
        """Look at the queue now (thread-safe; used by enqueue and by tests)."""
        loop, event = self._loop, self._wake
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    async def run(self) -> None:
        """Deliver until stop() is awaited (or the task is cancelled, like a crash)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        # A stop() asked before this run began (while the queue still recovers its
        # spool at start) ends it at once; the stop of an earlier run does not.
        self._stopping = self._stop_for_run == self._runs_ended
        self._global = asyncio.Semaphore(max(1, self._settings.max_connections))
        self._sessions = SessionCache()
        self._connected_jobs = 0
        self._tls = await asyncio.to_thread(TlsContexts)
        self._chores.recovered(self._clock())  # OutboundQueue.run recovered just now
        released = await asyncio.to_thread(self._store.release_node, self._node_id)
        if released:
            log.info("queue: %d recipient(s) from this node's last run are queued again", released)
        self._recorder.start()
        graceful = False
        try:
            while not self._stopping:
                self._wake.clear()
                if await self._pass():
                    continue
                await self._idle()
            graceful = True
        finally:
            await self._wind_down(graceful)
            self._runs_ended += 1
            self._stopped.set()
            self._passes.abandon()

    async def stop(self) -> None:
        """Finish the messages in progress, give back the rest, and return.

        Before run() has begun this only marks the stop: run() then returns at once.
        """
        self._stopping = True
        self._stop_for_run = self._runs_ended
        self.wake()
        if self._stopped is not None:
            await self._stopped.wait()

    def process_bounces(self) -> int:
        """Send the notices the admin asked for (thread); returns recipients bounced."""
        return self._books.admin_bounces(self._token())

    # -- the loop -------------------------------------------------------------

    async def _pass(self) -> bool:
        """One look at the queue; True if work was started."""
        number = self._passes.begin()
        started = await self._look()
        self._passes.end(number, quiet=not started and not self._tasks)
        return started

    async def _look(self) -> bool:
        now = self._clock()
        await self._chores.run_due(now)  # expired leases, the admin's bounces, recovery, purge
        room = min(CLAIM_BATCH, MAX_INFLIGHT - self._inflight)
        if room <= 0:
            return False
        token = self._token()
        claim = await asyncio.to_thread(
            self._store.claim, int(now), room, token, int(now) + self._settings.lease_seconds
        )
        if not claim.recipients:
            return False
        self._inflight += len(claim.recipients)
        await self._dispatch(claim)
        return True

    async def _idle(self) -> None:
        assert self._wake is not None
        timeout = POLL_SECONDS
        if self._inflight < MAX_INFLIGHT:
            due = await asyncio.to_thread(self._store.next_due)
            if due is not None:
                timeout = min(timeout, max(0.0, due - self._clock()))
            if timeout <= 0:
                timeout = 0.05  # due but not claimable yet (another node): look again soon
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _wind_down(self, graceful: bool) -> None:
        if graceful and self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE)
        else:
            pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self._sessions.close(polite=graceful)
        if graceful:
            await self._recorder.close()
        else:
            self._recorder.abandon()

    def _token(self) -> str:
        self._seq += 1
        return f"{self._node_id}/{self._run_id}/{self._seq}"

    # -- grouping -------------------------------------------------------------

    async def _dispatch(self, claim: Claim) -> None:
        groups, unroutable = await route_claim(self._router, claim)
        if unroutable:
            self._spawn(self._settle_unroutable(claim, unroutable), len(unroutable))
        for route, messages in groups:
            for job in plan_jobs(route, claim, messages, self._settings, self._clock()):
                self._spawn(self._run_job(job), len(job.open_ids))

    def _spawn(self, work: Coroutine[Any, Any, None], count: int) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            self._inflight -= count
            if not done.cancelled() and done.exception() is not None:
                log.error("queue: delivery task failed", exc_info=done.exception())
            self.wake()

        task.add_done_callback(finished)

    # -- work -----------------------------------------------------------------

    async def _settle_unroutable(
        self, claim: Claim, failures: list[tuple[RecipientInfo, Outcome]]
    ) -> None:
        per_message: dict[str, list[tuple[RecipientInfo, Outcome]]] = {}
        for row, outcome in failures:
            per_message.setdefault(row.message_id, []).append((row, outcome))
        for message_id, pairs in per_message.items():
            message = claim.messages[message_id]
            rows = [p[0] for p in pairs]
            outcomes = [p[1] for p in pairs]
            await asyncio.to_thread(
                self._books.settle, message, rows, outcomes, None, claim.token
            )

    async def _run_job(self, job: Job) -> None:
        assert self._global is not None and self._tls is not None
        key = job.route.destination
        semaphore = self._per_destination.get(key)
        if semaphore is None:
            limit = max(1, self._settings.max_connections_per_domain)
            semaphore = self._per_destination[key] = asyncio.Semaphore(limit)
        self._destination_jobs[key] = self._destination_jobs.get(key, 0) + 1
        try:
            async with semaphore, self._global:
                if self._stopping:
                    return
                outgoing, meta = await asyncio.to_thread(
                    prepare_job, job, self._store, self._spool, self._books, self._settings,
                    self._clock,
                )
                if not outgoing:
                    return

                async def record(item: Outgoing, outcomes: list[Outcome]) -> None:
                    message, rows, body = meta[id(item)]
                    if _plain_success(rows, outcomes):
                        # the common case: committed in a batch, the session goes on
                        first = outcomes[0]
                        job.commits.append(self._recorder.add(
                            message.id, [row.id for row in rows], first.remote_host, first.reply
                        ))
                    else:
                        await asyncio.to_thread(
                            self._books.settle, message, rows, outcomes, body, job.token
                        )
                    job.open_ids.difference_update(row.id for row in rows)
                    await self._maybe_renew(job)
                    if self._stopping:
                        raise _Stopping

                def still_ours(item: Outgoing) -> bool:
                    return all(tag in job.open_ids for tag in item.tags)

                async def make_room() -> None:  # before a new connection: within the total
                    await self._sessions.make_room(
                        self._connected_jobs, self._settings.max_connections
                    )

                self._connected_jobs += 1
                try:
                    with contextlib.suppress(_Stopping):
                        await deliver_over_route(
                            job.route, outgoing, record, resolver=self._resolver,
                            local_hostname=self._hostname, tls=self._tls,
                            still_wanted=still_ours, cache=self._sessions,
                            make_room=make_room,
                            park_limit=self._settings.max_connections_per_domain,
                        )
                finally:
                    self._connected_jobs -= 1
            if job.commits:
                # The job is done when its deliveries are on record.
                await asyncio.gather(*job.commits, return_exceptions=True)
        finally:
            self._destination_jobs[key] -= 1
            if self._destination_jobs[key] <= 0:
                # Forget idle destinations so the table does not grow forever.
                del self._destination_jobs[key]
                self._per_destination.pop(key, None)
            if job.open_ids and self._stopping and not _cancelling():
                await asyncio.to_thread(self._store.release, sorted(job.open_ids), job.token)

    async def _maybe_renew(self, job: Job) -> None:
        if not job.open_ids:
            return
        if self._clock() - job.renewed_at < self._settings.lease_seconds / 3:
            return
        now = int(self._clock())
        held = await asyncio.to_thread(
            self._store.renew, sorted(job.open_ids), job.token,
            now + self._settings.lease_seconds,
        )
        job.renewed_at = self._clock()
        lost = job.open_ids - held
        job.open_ids &= held
        if lost:
            log.warning("queue: lease lost for %d recipient(s); another node has them", len(lost))


def _plain_success(rows: Sequence[RecipientInfo], outcomes: Sequence[Outcome]) -> bool:
    """Every recipient delivered with one reply, and nobody wants a success notice."""
    if not outcomes or any(o.kind != DELIVERED for o in outcomes):
        return False
    first = outcomes[0]
    if any((o.remote_host, o.reply) != (first.remote_host, first.reply) for o in outcomes):
        return False
    return not any(wants(row.notify, "SUCCESS") and not o.remote_dsn
                   for row, o in zip(rows, outcomes, strict=True))


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
