"""Issue 4 end to end: a whole nmail sends through real MX resolution to loopback sinks."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from pathlib import Path

import dkim
import pytest

from fixtures_dns import DnsServer
from fixtures_smtp_sink import SmtpSink
from nmail.queue.dkim import DkimKeys, public_record
from server_rig import PASSWORD, RunningServer, make_data_dir
from support import free_port, wait_until

MESSAGE = (
    b"From: Bob <bob@test.local>\r\nTo: friend@remote.example\r\n"
    b"Subject: outbound\r\nMessage-ID: <out1@test.local>\r\n\r\n"
    b"hello\r\n.leading dot\r\n"
)


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    server = DnsServer().start()
    server.mx("remote.example", (10, "mx.remote.example"))
    server.add("mx.remote.example", "A", "127.0.0.2")
    yield server
    server.stop()


@pytest.fixture
def server(tmp_path: Path, dns: DnsServer) -> Iterator[tuple[RunningServer, SmtpSink]]:
    data = make_data_dir(tmp_path)
    port = free_port("127.0.0.2")
    cfg = data / "nmail.toml"
    cfg.write_text(
        cfg.read_text()
        .replace('# nameservers = ["127.0.0.1"]', f'nameservers = ["{dns.address}"]')
        .replace("[queue]\n", f"[queue]\nremote_port = {port}\n")
    )
    with RunningServer(data) as srv:
        srv.add_user("bob@test.local")
        sink = srv.loop.run(SmtpSink("127.0.0.2", port, name="mx.remote.example").start())
        try:
            yield srv, sink
        finally:
            srv.loop.run(sink.stop())


def submit(srv: RunningServer, rcpt: str = "friend@remote.example") -> None:
    with srv.smtp("submissions") as client:
        client.login("bob@test.local", PASSWORD)
        assert client.sendmail("bob@test.local", [rcpt], MESSAGE) == {}


def test_relayed_mail_is_delivered_once_and_dkim_signed(
    server: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = server
    submit(srv)
    wait_until(lambda: len(sink.received) == 1, what="delivery to the sink")
    got = sink.received[0]
    assert got.mail_from == "bob@test.local"
    assert got.rcpts == ["friend@remote.example"]
    assert got.data.endswith(b"hello\r\n.leading dot\r\n")
    pem = DkimKeys(srv.runtime.engine).get("test.local", "nmail")
    assert pem is not None
    record = public_record(pem).encode()
    assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: record)
    wait_until(
        lambda: all(e.pending == 0 for e in srv.runtime.queue.list_entries()),
        what="queue bookkeeping",
    )
    assert len(sink.received) == 1


def test_permanent_failure_puts_one_dsn_in_the_senders_inbox(
    server: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = server
    sink.rcpt_replies["friend@remote.example"] = ["550 5.1.1 No such user here"]
    submit(srv)
    inbox = srv.maildir("bob@test.local") / "new"
    wait_until(lambda: len(list(inbox.iterdir())) == 1, what="the DSN in bob's INBOX")
    raw = next(inbox.iterdir()).read_bytes()
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg["Auto-Submitted"].startswith("auto-replied")
    assert raw.startswith(b"Return-Path: <>\r\n")  # the null sender: never bounced back
    status = next(p for p in msg.walk() if p.get_content_type() == "message/delivery-status")
    text = status.as_bytes().decode("utf-8", "replace")
    assert "Final-Recipient: rfc822; friend@remote.example" in text
    assert "Status: 5.1.1" in text
    assert "No such user here" in text
    human = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_content()
    assert "friend@remote.example" in human


def test_null_mx_bounces_at_once(server: tuple[RunningServer, SmtpSink], dns: DnsServer) -> None:
    srv, sink = server
    dns.add("nomail.example", "MX", "0 .")
    submit(srv, "someone@nomail.example")
    inbox = srv.maildir("bob@test.local") / "new"
    wait_until(lambda: len(list(inbox.iterdir())) == 1, what="the null-MX DSN")
    assert b"Status: 5.1.10" in next(inbox.iterdir()).read_bytes()
    assert sink.received == []


def submit_with(srv: RunningServer, rcpt: str, options: list[str]) -> None:
    with srv.smtp("submissions") as client:
        client.login("bob@test.local", PASSWORD)
        client.ehlo()
        assert client.has_extn("dsn")
        assert client.sendmail("bob@test.local", [rcpt], MESSAGE, rcpt_options=options) == {}


def queue_settled(srv: RunningServer) -> bool:
    return all(e.pending == 0 for e in srv.runtime.queue.list_entries())


def test_notify_and_orcpt_given_at_rcpt_travel_to_the_next_hop(
    server: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = server
    submit_with(srv, "friend@remote.example",
                ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Friend+2Bx@remote.example"])
    wait_until(lambda: len(sink.received) == 1, what="delivery to the sink")
    params = sink.received[0].rcpt_params[0]
    assert "NOTIFY=SUCCESS,FAILURE" in params
    assert "ORCPT=rfc822;Friend+2Bx@remote.example" in params


def test_notify_never_means_no_bounce(server: tuple[RunningServer, SmtpSink]) -> None:
    srv, sink = server
    sink.rcpt_replies["friend@remote.example"] = ["550 5.1.1 No such user here"]
    submit_with(srv, "friend@remote.example", ["NOTIFY=NEVER"])
    wait_until(lambda: len(sink.received) == 0 and queue_settled(srv), what="the failure")
    assert list((srv.maildir("bob@test.local") / "new").iterdir()) == []


def test_an_alias_to_an_outside_address_keeps_the_address_the_sender_used(
    server: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = server
    srv.directory.add_alias("team@test.local", ["friend@remote.example"])
    with srv.smtp("smtp") as client:
        client.ehlo()
        assert client.sendmail("someone@elsewhere.example", ["team@test.local"], MESSAGE) == {}
    wait_until(lambda: len(sink.received) == 1, what="delivery to the sink")
    assert sink.received[0].rcpts == ["friend@remote.example"]
    assert "ORCPT=rfc822;team@test.local" in sink.received[0].rcpt_params[0]
