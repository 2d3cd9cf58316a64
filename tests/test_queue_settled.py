"""Waiting for a quiet scheduler pass instead of sleeping: QuietPasses and settled()."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fixtures_outbound import Harness, message, wait_until
from nmail.queue.quiet import QuietPasses, SchedulerStopped
from nmail.queue.store import DELIVERED, QUEUED

pytestmark = pytest.mark.timeout(60)


def run(engine: Engine, tmp_path: Path, body: Callable[[Harness], Awaitable[None]]) -> None:
    harness = Harness(engine, tmp_path)

    async def main() -> None:
        try:
            await body(harness)
        finally:
            await harness.close()

    asyncio.run(main())


def setup_mx(h: Harness) -> None:
    h.dns.mx("remote.test", (10, "mx1.remote.test"))
    h.dns.add("mx1.remote.test", "A", "127.0.0.2")


# -- the bookkeeping on its own -------------------------------------------------


async def registered_waiter(passes: QuietPasses) -> asyncio.Task[int]:
    """A task waiting for a quiet pass, returned once its wait is on record."""
    woken = asyncio.Event()
    task = asyncio.create_task(passes.wait(woken.set))
    await asyncio.wait_for(woken.wait(), 5)  # wake() runs right after registering
    return task


def test_only_a_quiet_pass_begun_after_the_call_answers() -> None:
    async def body() -> None:
        passes = QuietPasses()
        running = passes.begin()  # a pass already under way when the caller asks
        waiter = await registered_waiter(passes)
        passes.end(running, quiet=True)  # it read the clock too early to count
        second = passes.begin()
        passes.end(second, quiet=False)  # claimed work, or deliveries in progress
        third = passes.begin()
        passes.end(third, quiet=True)
        assert await waiter == third == 3
        assert passes.done == 3 and passes.begun == 3

    asyncio.run(body())


def test_a_cancelled_wait_is_forgotten_and_others_still_answered() -> None:
    async def body() -> None:
        passes = QuietPasses()
        gave_up = await registered_waiter(passes)
        kept = await registered_waiter(passes)
        gave_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gave_up
        assert passes.waiting == 1
        number = passes.begin()
        passes.end(number, quiet=True)
        assert await kept == number
        assert passes.waiting == 0

    asyncio.run(body())


def test_abandon_fails_the_waiters() -> None:
    async def body() -> None:
        passes = QuietPasses()
        waiter = await registered_waiter(passes)
        number = passes.begin()
        passes.end(number, quiet=False)
        passes.abandon()
        with pytest.raises(SchedulerStopped):
            await waiter

    asyncio.run(body())


# -- through a running queue ----------------------------------------------------


def test_settled_before_run_answers_once_the_queue_is_drained(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        await h.start_sinks()
        queue = h.make_queue()
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())
        h.queue = queue
        waiting = asyncio.create_task(queue.settled())  # before the scheduler runs
        h._task = asyncio.create_task(queue.run())
        number = await asyncio.wait_for(waiting, 15)
        # quiet means done: the delivery is on record, with no polling by the test
        assert queue.show(qid).recipients[0].state == DELIVERED
        assert len(h.sinks[0].received) == 1
        assert number >= 2, "the pass that claimed the message was not quiet"
        assert queue.passes >= number

    run(sqlite_engine, tmp_path, body)


def test_settled_waits_for_deliveries_in_progress(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        await h.start_sinks()
        sink = h.sinks[0]
        sink.hold = asyncio.Event()  # the sink has the message and holds its reply
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())
        await wait_until(lambda: len(sink.received) == 1, what="message on the sink")
        busy = queue.passes
        waiting = asyncio.create_task(queue.settled())

        def two_more_passes() -> bool:
            queue.wake()
            return queue.passes >= busy + 2

        # passes that claim nothing while the delivery is on the wire are not quiet
        await wait_until(two_more_passes, what="passes during the delivery")
        seen = queue.passes
        assert queue.show(qid).recipients[0].state != QUEUED
        sink.hold.set()
        number = await asyncio.wait_for(waiting, 15)
        assert number > seen
        assert queue.show(qid).recipients[0].state == DELIVERED

    run(sqlite_engine, tmp_path, body)


def test_settled_on_a_stopped_queue_raises(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        queue = await h.start()
        assert await h.settled() >= 1
        assert not queue.stopping
        await h.stop()
        assert queue.stopping
        with pytest.raises(SchedulerStopped):
            await queue.settled()

    run(sqlite_engine, tmp_path, body)


def test_a_crash_fails_a_pending_settled(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        await h.start_sinks()
        sink = h.sinks[0]
        sink.hold = asyncio.Event()
        queue = await h.start()
        queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())
        await wait_until(lambda: len(sink.received) == 1, what="message on the sink")
        waiting = asyncio.create_task(queue.settled())  # cannot be quiet: reply held
        await h.crash()
        sink.hold.set()
        with pytest.raises(SchedulerStopped):
            await asyncio.wait_for(waiting, 15)

    run(sqlite_engine, tmp_path, body)
