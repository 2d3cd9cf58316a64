"""Routing: transport map, smarthost with AUTH, STARTTLS policy, loops to ourselves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fixtures_outbound import Harness, SmtpSink, message, self_signed_context, wait_until
from nmail.config import RelayHost
from nmail.queue.outbound import OutboundQueue
from nmail.queue.routing import Nexthop, parse_transport
from nmail.queue.store import DELIVERED, FAILED, QUEUED

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("smtp:[10.0.0.5]:2525", Nexthop("10.0.0.5", False, 2525)),
        ("smtp:[mx.example.net]", Nexthop("mx.example.net", False, None)),
        ("smtp:relay.example.net:587", Nexthop("relay.example.net", True, 587)),
        ("relay.example.net", Nexthop("relay.example.net", True, None)),
        ("[2001:db8::1]:25", Nexthop("2001:db8::1", False, 25)),
    ],
)
def test_parse_transport(spec: str, expected: Nexthop) -> None:
    assert parse_transport(spec) == expected


@pytest.mark.parametrize("spec", ["", "smtp:", "smtp:[10.0.0.5", "smtp:[10.0.0.5]:x",
                                  "smtp:[10.0.0.5]:70000", "smtp:host:0", "smtp:a b",
                                  "smtp:[x]2525", "lmtp:/var/run/x"])
def test_parse_transport_refuses_bad_values(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_transport(spec)


def run(engine: Engine, tmp_path: Path, body, **kwargs: object) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        h = Harness(engine, tmp_path, **kwargs)  # type: ignore[arg-type]
        try:
            await body(h)
        finally:
            await h.close()

    asyncio.run(main())


def test_bracketed_transport_skips_mx_and_uses_its_port(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        await h.start_sinks()
        special = await SmtpSink("127.0.0.3", 0, name="special").start()
        try:
            h.dns.mx("routed.test", (10, "mx1.remote.test"))  # would go elsewhere
            queue = await h.start(transport={"routed.test": f"smtp:[127.0.0.3]:{special.port}",
                                             ".sub.test": f"smtp:[127.0.0.3]:{special.port}"})
            a = queue.enqueue("alice@nmail.test", ["bob@routed.test"], message())
            b = queue.enqueue("alice@nmail.test", ["bob@deep.sub.test"], message())
            await wait_until(lambda: all(queue.show(q).recipients[0].state == DELIVERED
                                         for q in (a, b)))
            assert sorted(r for m in special.received for r in m.rcpts) == [
                "bob@deep.sub.test", "bob@routed.test"]
            assert h.dns.count("routed.test", "MX") == 0
            assert h.sinks[0].received == []
        finally:
            await special.stop()

    run(sqlite_engine, tmp_path, body)


def test_transport_without_brackets_looks_up_the_nexthop_mx(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        h.dns.mx("gateway.test", (10, "in.gateway.test"))
        h.dns.add("in.gateway.test", "A", "127.0.0.2")
        queue = await h.start(transport={"internal.test": "smtp:gateway.test"})
        qid = queue.enqueue("alice@nmail.test", ["bob@internal.test"], message())
        await wait_until(lambda: queue.show(qid).recipients[0].state == DELIVERED)
        assert h.dns.count("gateway.test", "MX") == 1
        assert h.dns.count("internal.test", "MX") == 0

    run(sqlite_engine, tmp_path, body)


def test_smarthost_with_auth_over_starttls(sqlite_engine: Engine, tmp_path: Path) -> None:
    tls = self_signed_context(tmp_path, "smarthost.test")

    async def body(h: Harness) -> None:
        await h.start_sinks(tls=tls, auth={"relayuser": "s3cret"})
        # The admin opted out of verification (a self-signed smarthost).
        relay = RelayHost(host="127.0.0.2", port=h.port, user="relayuser", password="s3cret",
                          tls="starttls", verify_certificate=False)
        queue = await h.start(relay=relay)
        qid = queue.enqueue("alice@nmail.test", ["someone@anywhere.test"], message())
        await wait_until(lambda: queue.show(qid).recipients[0].state == DELIVERED)
        sink = h.sinks[0]
        assert sink.auth_users == ["relayuser"]
        assert sink.received[0].tls
        assert h.dns.queries == [], "a smarthost needs no MX lookups"

    run(sqlite_engine, tmp_path, body)


def test_smarthost_password_waits_for_a_verified_certificate(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """By default a configured password is never sent to an unverified certificate."""
    tls = self_signed_context(tmp_path, "smarthost.test")

    async def body(h: Harness) -> None:
        await h.start_sinks(tls=tls, auth={"relayuser": "s3cret"})
        relay = RelayHost(host="127.0.0.2", port=h.port, user="relayuser", password="s3cret",
                          tls="starttls")
        queue = await h.start(relay=relay)
        qid = queue.enqueue("alice@nmail.test", ["someone@anywhere.test"], message())
        await wait_until(lambda: queue.show(qid).recipients[0].attempts == 1)
        row = queue.show(qid).recipients[0]
        assert row.state == QUEUED
        assert "certificate" in (row.last_error or "").lower()
        assert h.sinks[0].auth_users == [] and h.sinks[0].received == []

    run(sqlite_engine, tmp_path, body)


def test_smarthost_requiring_tls_never_sends_password_in_clear(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        await h.start_sinks(auth={"relayuser": "s3cret"})  # no STARTTLS offered
        relay = RelayHost(host="127.0.0.2", port=h.port, user="relayuser", password="s3cret",
                          tls="starttls")
        queue = await h.start(relay=relay)
        qid = queue.enqueue("alice@nmail.test", ["someone@anywhere.test"], message())
        await wait_until(lambda: queue.show(qid).recipients[0].attempts == 1)
        row = queue.show(qid).recipients[0]
        assert row.state == QUEUED and "STARTTLS" in (row.last_error or "")
        assert h.sinks[0].auth_users == [] and h.sinks[0].received == []

    run(sqlite_engine, tmp_path, body)


def test_wrong_smarthost_password_is_a_temporary_failure(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        await h.start_sinks(auth={"relayuser": "s3cret"})
        relay = RelayHost(host="127.0.0.2", port=h.port, user="relayuser", password="wrong",
                          tls="none", verify_certificate=False)
        queue = await h.start(relay=relay)
        qid = queue.enqueue("alice@nmail.test", ["someone@anywhere.test"], message())
        await wait_until(lambda: queue.show(qid).recipients[0].attempts == 1)
        row = queue.show(qid).recipients[0]
        assert row.state == QUEUED and "535" in (row.last_error or "")
        assert h.bounces == []

    run(sqlite_engine, tmp_path, body)


def test_opportunistic_starttls_to_mx(sqlite_engine: Engine, tmp_path: Path) -> None:
    tls = self_signed_context(tmp_path, "mx1.remote.test")

    async def body(h: Harness) -> None:
        h.dns.mx("remote.test", (10, "mx1.remote.test"))
        h.dns.add("mx1.remote.test", "A", "127.0.0.2")
        await h.start_sinks(tls=tls)
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())
        await wait_until(lambda: queue.show(qid).recipients[0].state == DELIVERED)
        assert h.sinks[0].received[0].tls, "STARTTLS used when offered, cert not checked"
        assert h.sinks[0].ehlo_names == ["mail.nmail.test", "mail.nmail.test"]

    run(sqlite_engine, tmp_path, body)


def test_verified_tls_refuses_an_untrusted_certificate(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    tls = self_signed_context(tmp_path, "mx1.remote.test")

    async def body(h: Harness) -> None:
        h.dns.mx("remote.test", (10, "mx1.remote.test"))
        h.dns.add("mx1.remote.test", "A", "127.0.0.2")
        await h.start_sinks(tls=tls)
        queue = await h.start(tls_verify=("remote.test",))
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())
        await wait_until(lambda: queue.show(qid).recipients[0].attempts == 1)
        row = queue.show(qid).recipients[0]
        assert row.state == QUEUED
        assert "certificate" in (row.last_error or "").lower()
        assert h.sinks[0].received == []

    run(sqlite_engine, tmp_path, body)


def test_mx_pointing_at_ourselves_bounces(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        h.dns.mx("loop.test", (10, "mail.nmail.test"))
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@loop.test"], message())
        await wait_until(lambda: queue.show(qid).recipients[0].state == FAILED)
        assert "loops back to myself" in (queue.show(qid).recipients[0].last_error or "")
        assert len(h.bounces) == 1

    run(sqlite_engine, tmp_path, body)


def test_dsn_parameters_passed_to_a_dsn_capable_server(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        h.dns.mx("remote.test", (10, "mx1.remote.test"))
        h.dns.add("mx1.remote.test", "A", "127.0.0.2")
        queue = await h.start()
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message(),
                            dsn_envid="id+1 x", dsn_ret="HDRS", notify=["SUCCESS,FAILURE"],
                            orcpt=["rfc822;Bob@Remote.test"])
        await wait_until(lambda: queue.show(qid).recipients[0].state == DELIVERED)
        got = h.sinks[0].received[0]
        assert "RET=HDRS" in got.mail_params and "ENVID=id+2B1+20x" in got.mail_params
        assert got.rcpt_params == [["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Bob@Remote.test"]]
        assert h.bounces == [], "the DSN-capable remote reports success itself"

    run(sqlite_engine, tmp_path, body)


async def without_dsn(h: Harness) -> OutboundQueue:
    """The queue, sending remote.test's mail to a sink that offers no DSN."""
    h.dns.mx("remote.test", (10, "mx1.remote.test"))
    h.dns.add("mx1.remote.test", "A", "127.0.0.2")
    await h.start_sinks()
    h.sinks[0].offer_dsn = False
    return await h.start()


def test_success_notice_when_remote_has_no_dsn(sqlite_engine: Engine, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        queue = await without_dsn(h)
        qid = queue.enqueue("alice@nmail.test", ["bob@remote.test", "carol@remote.test"],
                            message(), notify=["SUCCESS", "NEVER"])
        await wait_until(lambda: len(h.bounces) == 1, what="relayed notice")
        assert [r.state for r in queue.show(qid).recipients] == [DELIVERED, DELIVERED]
        data, rcpt = h.bounces[0]
        assert rcpt == "alice@nmail.test"
        assert b"Action: relayed" in data and b"Status: 2.0.0" in data
        assert b"bob@remote.test" in data and b"Final-Recipient: rfc822; carol" not in data
        got = h.sinks[0].received[0]
        assert not any(p.startswith(("RET=", "ENVID=")) for p in got.mail_params)
        assert got.rcpt_params == [[], []]

    run(sqlite_engine, tmp_path, body)


def test_a_large_messages_relayed_notice_quotes_its_headers(sqlite_engine: Engine,
                                                           tmp_path: Path) -> None:
    """A body past 1 MiB is sent from its file and was not in memory: its "relayed"
    notice quoted nothing at all; it quotes the header section read from the file."""
    async def body(h: Harness) -> None:
        queue = await without_dsn(h)
        large = message(subject="large one", body="y" * 76 + "\r\n") + (
            b"z" * 998 + b"\r\n") * 2000
        queue.enqueue("alice@nmail.test", ["bob@remote.test"], large, notify=["SUCCESS"])
        await wait_until(lambda: len(h.bounces) == 1, what="relayed notice")
        data, _rcpt = h.bounces[0]
        assert b"Action: relayed" in data and b"Content-Type: text/rfc822-headers" in data
        assert b"Subject: large one\r\n" in data and b"zzzz" not in data

    run(sqlite_engine, tmp_path, body)
