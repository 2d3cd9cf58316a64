"""The queue's connection cache: jobs to one destination share a parked session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

import pytest

from fixtures_outbound import wait_until
from fixtures_smtp_recorder import Recorder
from nmail.dns.resolver import MailResolver
from nmail.queue.outcomes import DELIVERED, Outcome, Outgoing
from nmail.queue.route_delivery import deliver_over_route
from nmail.queue.routing import TLS_NONE, Route
from nmail.queue.session_cache import SessionCache
from nmail.queue.smtp_client import TlsContexts

pytestmark = pytest.mark.timeout(30)

BODY = b"Subject: t\r\n\r\nhello\r\n"


class LoopbackResolver:
    async def addresses(self, host: str) -> list[str]:
        return ["127.0.0.1"]


class Jobs:
    """deliver_over_route as the scheduler calls it, with one cache."""

    def __init__(self, cache: SessionCache) -> None:
        self.cache = cache
        self.outcomes: list[Outcome] = []
        self.tls = TlsContexts()
        self.rooms: list[int] = []

    async def make_room(self) -> None:
        self.rooms.append(len(self.cache))

    async def send(self, server: Recorder, *ids: str, park_limit: int = 2) -> None:
        route = Route(("rec.test",), server.port, TLS_NONE)
        items = [Outgoing(i, "a@nmail.test", ("b@remote.test",), BODY) for i in ids]

        async def record(item: Outgoing, outcomes: list[Outcome]) -> None:
            self.outcomes += outcomes

        await deliver_over_route(
            route, items, record, resolver=cast(MailResolver, LoopbackResolver()),
            local_hostname="client.test", tls=self.tls, cache=self.cache,
            make_room=self.make_room, park_limit=park_limit,
        )


def run(body: Callable[[list[Recorder]], Awaitable[None]], servers: int = 1) -> list[Recorder]:
    recorders = [Recorder() for _ in range(servers)]

    async def main() -> None:
        for recorder in recorders:
            await recorder.start()
        try:
            await body(recorders)
        finally:
            for recorder in recorders:
                await recorder.stop()

    asyncio.run(main())
    return recorders


def quits(server: Recorder) -> int:
    return server.verbs().count("QUIT")


def test_the_next_job_takes_the_parked_session() -> None:
    async def body(servers: list[Recorder]) -> None:
        jobs = Jobs(SessionCache(idle_seconds=60))
        await jobs.send(servers[0], "q1")
        assert len(jobs.cache) == 1 and quits(servers[0]) == 0
        await jobs.send(servers[0], "q2", "q3")
        assert len(servers[0].sessions) == 1  # one connection for both jobs
        assert [m.sender for m in servers[0].messages] == ["a@nmail.test"] * 3
        assert [o.kind for o in jobs.outcomes] == [DELIVERED] * 3
        assert jobs.rooms == [0]  # only the first job connected
        await jobs.cache.close()  # a node stopping says goodbye
        await wait_until(lambda: quits(servers[0]) == 1, 5, "QUIT")
        assert len(jobs.cache) == 0

    run(body)


def test_a_cancelled_scheduler_hangs_up_without_quit() -> None:
    async def body(servers: list[Recorder]) -> None:
        jobs = Jobs(SessionCache(idle_seconds=60))
        await jobs.send(servers[0], "q1")
        await jobs.cache.close(polite=False)
        await wait_until(lambda: servers[0].sessions[-1].transport is None, 5, "the hang-up")
        assert quits(servers[0]) == 0 and len(jobs.cache) == 0

    run(body)


def test_a_parked_session_is_closed_after_its_idle_time() -> None:
    async def body(servers: list[Recorder]) -> None:
        jobs = Jobs(SessionCache(idle_seconds=0.2))
        await jobs.send(servers[0], "q1")
        assert len(jobs.cache) == 1
        await wait_until(lambda: quits(servers[0]) == 1 and len(jobs.cache) == 0, 5, "idle QUIT")
        await jobs.send(servers[0], "q2")  # a new connection, parked in turn
        assert len(servers[0].sessions) == 2 and len(jobs.cache) == 1
        await jobs.cache.close()

    run(body)


def test_a_session_the_server_dropped_while_parked_is_replaced() -> None:
    async def body(servers: list[Recorder]) -> None:
        jobs = Jobs(SessionCache(idle_seconds=60))
        server = servers[0]
        await jobs.send(server, "q1")
        # Noticed while parked: take() drops it.
        server.sessions[-1].hang_up()
        await wait_until(lambda: server.sessions[-1].transport is None, 5, "hang-up")
        await jobs.send(server, "q2")
        # Not noticed yet (the hang-up and the take in the same turn of the loop):
        # the message had not left, so it goes out at once on a new connection.
        server.sessions[-1].hang_up()
        await jobs.send(server, "q3")
        assert len(server.sessions) == 3
        assert len(server.messages) == 3
        assert [o.kind for o in jobs.outcomes] == [DELIVERED] * 3
        await jobs.cache.close()

    run(body)


def test_room_is_made_by_closing_other_destinations_sessions() -> None:
    async def body(servers: list[Recorder]) -> None:
        cache = SessionCache(idle_seconds=60)
        jobs = Jobs(cache)
        await jobs.send(servers[0], "q1")
        await jobs.send(servers[1], "q2")
        assert len(cache) == 2
        await cache.make_room(in_use=1, limit=2)  # one job about to connect, two may be open
        assert len(cache) == 1
        # Closed by the time make_room returns: QUIT answered, the line down.
        assert quits(servers[0]) == 1 and quits(servers[1]) == 0
        await cache.make_room(in_use=2, limit=2)
        assert quits(servers[1]) == 1 and len(cache) == 0
        await cache.make_room(in_use=5, limit=2)  # nothing parked: nothing to do

    run(body, servers=2)


def test_no_more_than_the_limit_is_parked_per_destination() -> None:
    async def body(servers: list[Recorder]) -> None:
        cache = SessionCache(idle_seconds=60)
        jobs = Jobs(cache)
        await asyncio.gather(jobs.send(servers[0], "q1", park_limit=1),
                             jobs.send(servers[0], "q2", park_limit=1))
        assert len(servers[0].sessions) == 2  # both connected: nothing was parked yet
        assert len(cache) == 1
        await wait_until(lambda: quits(servers[0]) == 1, 5, "the second one's QUIT")
        await cache.close()
        await wait_until(lambda: quits(servers[0]) == 2, 5, "the parked one's QUIT")
        await jobs.send(servers[0], "q3")  # a closed cache parks nothing
        assert len(cache) == 0
        await wait_until(lambda: quits(servers[0]) == 3, 5, "QUIT at the end of the job")

    run(body)


def test_an_old_session_is_not_parked_again() -> None:
    async def body(servers: list[Recorder]) -> None:
        cache = SessionCache(idle_seconds=60, max_age_seconds=0.0)
        jobs = Jobs(cache)
        await jobs.send(servers[0], "q1")  # older than 0 s at its end: closed, not parked
        assert len(cache) == 0
        await wait_until(lambda: quits(servers[0]) == 1, 5, "QUIT")
        await jobs.send(servers[0], "q2")
        assert len(servers[0].sessions) == 2

    run(body)
