"""Outbound delivery end to end: real MX resolution (loopback DNS) to loopback sinks."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fixtures_outbound import Harness, message, wait_until
from nmail.queue.errors import QueueEntryNotFound
from nmail.queue.outbound import OutboundQueue
from nmail.queue.store import BOUNCING, DELIVERED, FAILED, QUEUED

pytestmark = pytest.mark.timeout(60)


def run(engine: Engine, tmp_path: Path, body: Callable[[Harness], Awaitable[None]],
        **kwargs: object) -> Harness:
    harness = Harness(engine, tmp_path, **kwargs)  # type: ignore[arg-type]

    async def main() -> None:
        try:
            await body(harness)
        finally:
            await harness.close()

    asyncio.run(main())
    return harness


def states(h: Harness, queue_id: str) -> list[str]:
    return [r.state for r in h.queue.show(queue_id).recipients]


def dsn_parts(data: bytes) -> dict[str, email.message.Message]:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    return {part.get_content_type(): part for part in msg.iter_parts()}


def status_text(data: bytes) -> str:
    raw = data.decode("utf-8", "replace")
    start = raw.index("Content-Type: message/delivery-status")
    return raw[start : raw.index("\r\n--", start)].replace("\r\n ", " ")


def human_text(data: bytes) -> str:
    part = dsn_parts(data)["text/plain"]
    return str(part.get_content())


def setup_mx(h: Harness) -> None:
    h.dns.mx("remote.test", (10, "mx1.remote.test"))
    h.dns.add("mx1.remote.test", "A", "127.0.0.2")


def test_250_delivers_once_via_mx(engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())
        await wait_until(lambda: states(h, qid) == [DELIVERED], what="delivered")
        sink = h.sinks[0]
        assert len(sink.received) == 1
        got = sink.received[0]
        assert got.mail_from == "alice@nmail.test" and got.rcpts == ["bob@remote.test"]
        assert b"Subject: hello" in got.data
        assert sink.ehlo_names == ["mail.nmail.test"]
        body_file = tmp_path / "queue" / f"{qid}.eml"
        await wait_until(lambda: not body_file.exists(), what="body removed")
        row = queue.show(qid).recipients[0]
        assert row.remote_host == "mx1.remote.test" and row.attempts == 1
        assert queue.list_entries() == []
        assert h.bounces == []
        assert ("remote.test", "MX") in h.dns.queries

    run(engine, tmp_path, body)


def test_451_then_250_delivers_once_after_retry(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        await h.start_sinks()
        h.sinks[0].rcpt_replies["bob@remote.test"] = ["451 4.7.1 Greylisted, come back later",
                                                      "250 2.1.5 OK"]
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())

        def retried() -> bool:
            row = queue.show(qid).recipients[0]
            return row.state == QUEUED and row.attempts == 1

        await wait_until(retried, what="first attempt recorded")
        row = queue.show(qid).recipients[0]
        assert "451 4.7.1 Greylisted" in (row.last_error or "")
        assert row.next_attempt == int(h.clock()) + 300
        entry = queue.list_entries()[0]
        assert entry.id == qid and entry.attempts == 1
        h.advance(60)  # not due yet: nothing happens
        await h.settled()
        assert h.sinks[0].received == []
        assert h.sinks[0].rcpt_attempts["bob@remote.test"] == 1
        assert queue.show(qid).recipients[0].attempts == 1
        h.advance(300)
        await wait_until(lambda: states(h, qid) == [DELIVERED], what="delivered after retry")
        assert len(h.sinks[0].received) == 1
        assert h.sinks[0].rcpt_attempts["bob@remote.test"] == 2
        assert h.bounces == []

    run(sqlite_engine, tmp_path, body)


def test_550_sends_one_dsn_to_local_sender(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        await h.start_sinks()
        h.sinks[0].rcpt_replies["nobody@remote.test"] = [
            "550 5.1.1 <nobody@remote.test>: Recipient address rejected: User unknown"
        ]
        queue = await h.start()
        qid = queue.enqueue(
            "alice@nmail.test", ["nobody@remote.test", "bob@remote.test"],
            message(to="nobody@remote.test"),
        )
        await wait_until(lambda: sorted(states(h, qid)) == [DELIVERED, FAILED], what="settled")
        assert len(h.bounces) == 1
        data, rcpt = h.bounces[0]
        assert rcpt == "alice@nmail.test"
        status = status_text(data)
        assert "Final-Recipient: rfc822; nobody@remote.test" in status
        assert "Action: failed" in status
        assert "Status: 5.1.1" in status
        assert "Remote-MTA: dns; mx1.remote.test" in status
        assert "Recipient address rejected: User unknown" in status
        assert "bob@remote.test" not in status
        human = human_text(data)
        assert "nobody@remote.test" in human and "mx1.remote.test" in human
        assert "550 5.1.1 <nobody@remote.test>: Recipient address rejected" in human
        assert "전달하지 못했습니다" in human
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["Subject"] == f"Error sending message [{qid}] from [mail.nmail.test]"
        assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.nmail.test"
        assert msg["Auto-Submitted"] == "auto-replied"
        assert "text/rfc822-headers" in dsn_parts(data)
        # the good recipient went through in the same transaction
        assert [m.rcpts for m in h.sinks[0].received] == [["bob@remote.test"]]
        # and nothing more happens later
        sessions = h.sinks[0].sessions
        h.advance(10 * 86400)
        await h.settled()
        assert len(h.bounces) == 1
        assert h.sinks[0].sessions == sessions

    run(sqlite_engine, tmp_path, body)


def test_remote_sender_bounce_goes_through_queue_with_null_sender(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        h.dns.mx("elsewhere.test", (10, "mx1.remote.test"))
        await h.start_sinks()
        h.sinks[0].rcpt_replies["nobody@remote.test"] = ["550 5.1.1 No such user"]
        queue = await h.start()
        # A forwarded message: the envelope sender is outside (not ours).
        qid = queue.enqueue("carol@elsewhere.test", ["nobody@remote.test"], message())
        await wait_until(lambda: states(h, qid) == [FAILED], what="failed")

        def bounce_delivered() -> bool:
            return any(m.rcpts == ["carol@elsewhere.test"] for m in h.sinks[0].received)

        await wait_until(bounce_delivered, what="bounce delivered remotely")
        bounce = next(m for m in h.sinks[0].received if m.rcpts == ["carol@elsewhere.test"])
        assert bounce.mail_from == ""
        assert b"Status: 5.1.1" in bounce.data
        assert h.bounces == []

    run(sqlite_engine, tmp_path, body)


def test_bounce_of_a_bounce_is_dropped(sqlite_engine: Engine, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        await h.start_sinks()
        h.sinks[0].rcpt_replies["nobody@remote.test"] = ["550 5.1.1 No such user"]
        queue = await h.start()
        qid = queue.enqueue("", ["nobody@remote.test"], message(), is_bounce=True)
        await wait_until(lambda: states(h, qid) == [FAILED], what="failed")
        await h.settled()
        assert h.bounces == []
        assert [m for m in h.sinks[0].received] == []
        assert queue.list_entries() == []
        assert "loop guard" in caplog.text

    run(sqlite_engine, tmp_path, body)


def test_remote_down_until_expiry_bounces_with_expiry_text(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        # MX points at 127.0.0.9 where nothing listens on the sink port.
        h.dns.mx("down.test", (10, "mx.down.test"))
        h.dns.add("mx.down.test", "A", "127.0.0.9")
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@down.test"], message(to="bob@down.test"))
        attempts = 0
        while h.bounces == [] and attempts < 40:
            attempts += 1
            await wait_until(
                lambda n=attempts: queue.show(qid).recipients[0].attempts >= n,  # type: ignore[misc]
                what=f"attempt {attempts}",
            )
            row = queue.show(qid).recipients[0]
            if row.state == QUEUED:
                h.advance(row.next_attempt - h.clock())
        assert len(h.bounces) == 1, "one DSN after the queue lifetime"
        data, rcpt = h.bounces[0]
        assert rcpt == "alice@nmail.test"
        assert "The maximum number of delivery attempts has been reached" in human_text(data)
        status = status_text(data)
        assert "Action: failed" in status and "Status: 4.4.1" in status
        assert "Connection refused" in status or "connect" in status.lower()
        await wait_until(lambda: states(h, qid) == [FAILED], what="failed")
        row = queue.show(qid).recipients[0]
        # back-off: 5, 10, 20, 40 min... within a 6 h lifetime that is few attempts
        assert 4 <= row.attempts <= 12
        assert queue.list_entries() == []

    run(sqlite_engine, tmp_path, body, first_retry=300, max_retry=3600,
        give_up_after=6 * 3600, delay_warning_after=0)


def test_delay_warning_sent_once(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        await h.start_sinks()
        h.sinks[0].rcpt_replies["bob@remote.test"] = ["451 4.3.0 Try later"] * 6 + ["250 OK"]
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())
        for n in range(1, 7):
            await wait_until(
                lambda n=n: queue.show(qid).recipients[0].attempts >= n,  # type: ignore[misc]
                what=f"attempt {n}",
            )
            h.advance(queue.show(qid).recipients[0].next_attempt - h.clock())
        await wait_until(lambda: states(h, qid) == [DELIVERED], what="delivered")
        assert len(h.bounces) == 1
        data, _ = h.bounces[0]
        status = status_text(data)
        assert "Action: delayed" in status and "Status: 4.3.0" in status
        assert "Will-Retry-Until:" in status
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["Subject"].startswith("Delivery delayed")

    run(sqlite_engine, tmp_path, body, first_retry=600, max_retry=3600,
        delay_warning_after=2 * 3600)


def test_null_mx_bounces_at_once(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        h.dns.mx("nomail.test", (0, "."))
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@nomail.test"], message())
        await wait_until(lambda: len(h.bounces) == 1, what="DSN")
        status = status_text(h.bounces[0][0])
        assert "Status: 5.1.10" in status
        assert "Domain does not accept mail" in status
        await wait_until(lambda: states(h, qid) == [FAILED], what="failed")

    run(sqlite_engine, tmp_path, body)


def test_nxdomain_bounces_and_servfail_retries(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        h.dns.servfail.add("flaky.test")
        queue = await h.start()
        gone = queue.enqueue("alice@nmail.test", ["bob@gone.test"], message())
        flaky = queue.enqueue("alice@nmail.test", ["bob@flaky.test"], message())
        await wait_until(lambda: len(h.bounces) == 1, what="DSN for NXDOMAIN")
        assert "Status: 5.1.2" in status_text(h.bounces[0][0])
        await wait_until(lambda: states(h, gone) == [FAILED], what="failed")
        await wait_until(lambda: queue.show(flaky).recipients[0].attempts == 1, what="retry")
        assert states(h, flaky) == [QUEUED]
        assert "4.4.3" in (queue.show(flaky).recipients[0].last_error or "")

    run(sqlite_engine, tmp_path, body)


def test_next_mx_on_refused_greeting_and_dead_host(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        h.dns.mx("multi.test", (5, "dead.multi.test"), (10, "busy.multi.test"),
                 (20, "good.multi.test"))
        h.dns.add("dead.multi.test", "A", "127.0.0.9")
        h.dns.add("busy.multi.test", "A", "127.0.0.3")
        h.dns.add("good.multi.test", "A", "127.0.0.4")
        await h.start_sinks()
        busy, good = h.sinks[1], h.sinks[2]
        busy.greeting = "421 4.3.2 Too busy, try another"
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@multi.test"], message())
        await wait_until(lambda: states(h, qid) == [DELIVERED], what="delivered")
        assert len(good.received) == 1 and busy.received == []
        assert busy.sessions == 1
        assert queue.show(qid).recipients[0].remote_host == "good.multi.test"

    run(sqlite_engine, tmp_path, body, sink_hosts=("127.0.0.2", "127.0.0.3", "127.0.0.4"))


def test_no_mx_falls_back_to_a_record(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        h.dns.add("plain.test", "A", "127.0.0.2")
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@plain.test"], message())
        await wait_until(lambda: states(h, qid) == [DELIVERED], what="delivered")
        assert h.sinks[0].received[0].rcpts == ["bob@plain.test"]

    run(sqlite_engine, tmp_path, body)


def test_one_connection_carries_all_recipients_and_messages(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        h.dns.mx("alias.test", (10, "mx1.remote.test"))  # same servers, other domain
        await h.start_sinks()
        sink = h.sinks[0]
        sink.hold = asyncio.Event()
        queue = h.make_queue()
        ids = [
            queue.enqueue("alice@nmail.test", ["a@remote.test", "b@remote.test", "c@alias.test"],
                          message(subject=f"m{i}"))
            for i in range(3)
        ]
        sink.hold.set()
        h.queue = queue
        h._task = asyncio.create_task(queue.run())
        await wait_until(lambda: all(states(h, q) == [DELIVERED] * 3 for q in ids),
                         what="all delivered")
        assert sink.sessions == 1, "one connection for the three messages"
        assert [sorted(m.rcpts) for m in sink.received] == [
            ["a@remote.test", "b@remote.test", "c@alias.test"]
        ] * 3

    run(sqlite_engine, tmp_path, body, max_connections_per_domain=1)


def test_connection_limit_per_destination(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        await h.start_sinks()
        sink = h.sinks[0]
        queue = h.make_queue()
        ids = [queue.enqueue("alice@nmail.test", [f"u{i}@remote.test"], message())
               for i in range(40)]
        h.queue = queue
        h._task = asyncio.create_task(queue.run())
        await wait_until(lambda: len(sink.received) == 40, what="all 40 delivered")
        await wait_until(lambda: all(states(h, q) == [DELIVERED] for q in ids), what="recorded")
        assert sink.max_active <= 2
        assert sink.sessions >= 2

    run(sqlite_engine, tmp_path, body, max_connections_per_domain=2)


def test_total_connection_limit(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        # Two destinations (different MX names) on one sink: only the total limit applies.
        for name in ("a", "b", "c"):
            h.dns.mx(f"{name}.test", (10, f"mx.{name}.test"))
            h.dns.add(f"mx.{name}.test", "A", "127.0.0.2")
        await h.start_sinks()
        sink = h.sinks[0]
        queue = h.make_queue()
        ids = [queue.enqueue("alice@nmail.test", [f"u{i}@{'abc'[i % 3]}.test"], message())
               for i in range(30)]
        h.queue = queue
        h._task = asyncio.create_task(queue.run())
        await wait_until(lambda: all(states(h, q) == [DELIVERED] for q in ids), what="all")
        assert len(sink.received) == 30
        assert sink.max_active == 1
        assert sink.sessions >= 3

    run(sqlite_engine, tmp_path, body, max_connections=1, max_connections_per_domain=5)


def test_admin_bounce_of_local_sender_finished_by_running_node(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        await h.start_sinks()
        # The CLI's queue has no local delivery path: it can only mark the entry.
        cli_queue = OutboundQueue(sqlite_engine, tmp_path / "queue", h.make_queue().config,
                                  is_local_domain=lambda d: d == "nmail.test")
        qid = cli_queue.enqueue("alice@nmail.test", ["bob@nowhere.test"], message())
        result = cli_queue.bounce(qid)
        assert (result.marked, result.sent_now) == (1, 0)
        assert cli_queue.show(qid).recipients[0].state == BOUNCING
        await h.start()
        await wait_until(lambda: len(h.bounces) == 1, what="notice from the serving node")
        data, rcpt = h.bounces[0]
        assert rcpt == "alice@nmail.test"
        assert "returned by the mail server administrator" in human_text(data)
        await wait_until(lambda: states(h, qid) == [FAILED], what="failed")
        assert h.sinks[0].received == []

    run(sqlite_engine, tmp_path, body)


def test_finished_messages_are_forgotten_after_the_keep_period(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        setup_mx(h)
        await h.start_sinks()
        h.sinks[0].rcpt_replies["carol@remote.test"] = ["451 4.3.0 Try again later"]
        queue = await h.start(keep_finished=3 * 3600)
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())
        waiting = queue.enqueue("alice@nmail.test", ["carol@remote.test"], message())
        await wait_until(lambda: states(h, qid) == [DELIVERED], what="delivered")
        h.advance(2 * 3600)  # an hourly sweep inside the keep period: still shown
        await h.settled()
        assert states(h, qid) == [DELIVERED]
        h.advance(2 * 3600)  # past it: the finished one goes, the waiting one stays
        await h.settled()
        with pytest.raises(QueueEntryNotFound):
            queue.show(qid)
        assert states(h, waiting) == [QUEUED]
        assert [e.id for e in queue.list_entries()] == [waiting]

    run(sqlite_engine, tmp_path, body)
