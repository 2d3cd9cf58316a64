"""Issue 9 item 1: our DKIM key signs only what a user may send; forwards use SRS.

A whole nmail on loopback, an MX sink for the outside world. Loopback is
not a relay network here (the admin listed another), so port-25 clients
are strangers, as on the Internet.
"""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from sqlalchemy import func, select

from fixtures_dns import DnsServer
from fixtures_smtp_sink import SmtpSink
from nmail.db.tables import queue_messages
from nmail.delivery.srs import SrsRewriter, load_secret
from nmail.queue.dkim import DkimKeys, public_record
from server_rig import HOSTNAME, PASSWORD, RunningServer, make_data_dir
from support import free_port, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    server = DnsServer().start()
    for domain in ("remote.example", "evil.example"):
        server.mx(domain, (10, "mx.remote.example"))
    server.add("mx.remote.example", "A", "127.0.0.2")
    yield server
    server.stop()


@pytest.fixture
def world(tmp_path: Path, dns: DnsServer) -> Iterator[tuple[RunningServer, SmtpSink]]:
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
        srv.add_user("carol@other.test")
        srv.directory.add_alias("fwd@test.local", ["friend@remote.example"])
        srv.directory.add_relay_network("192.0.2.0/24")  # loopback is not trusted
        sink = SmtpSink("127.0.0.2", port, name="mx.remote.example")
        sink.offer_dsn = False  # a next hop without DSN: we would owe "relayed" notices
        srv.loop.run(sink.start())
        try:
            yield srv, sink
        finally:
            srv.loop.run(sink.stop())


def settle(srv: RunningServer) -> None:
    wait_until(lambda: all(e.pending == 0 for e in srv.runtime.queue.list_entries()),
               what="the queue to empty")


def notices(srv: RunningServer) -> int:
    with srv.runtime.engine.connect() as conn:
        return int(conn.execute(
            select(func.count()).select_from(queue_messages).where(queue_messages.c.is_bounce)
        ).scalar_one())


def verifies(srv: RunningServer, data: bytes, domain: str) -> bool:
    pem = DkimKeys(srv.runtime.engine).get(domain, "nmail")
    assert pem is not None
    record = public_record(pem).encode()
    return bool(dkim.verify(data, dnsfunc=lambda name, timeout=5: record))


def our_signatures(data: bytes) -> list[bytes]:
    head = re.sub(rb"\r\n[ \t]+", b" ", data.split(b"\r\n\r\n", 1)[0])
    return [line for line in head.split(b"\r\n") if line.lower().startswith(b"dkim-signature")]


FORGED = (
    b"From: Bob <bob@test.local>\r\nTo: fwd@test.local\r\nSubject: pay this\r\n"
    b"Message-ID: <forged@evil.example>\r\n\r\nWire the money.\r\n"
)


def test_forwarded_inbound_mail_is_never_signed_and_leaves_with_srs(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = world
    with srv.smtp("smtp") as client:
        client.ehlo("evil.example")
        assert client.mail("attacker@evil.example", ["RET=FULL", "ENVID=x1"])[0] == 250
        assert client.rcpt("fwd@test.local", ["NOTIFY=SUCCESS,FAILURE"])[0] == 250
        assert client.data(FORGED)[0] == 250
    wait_until(lambda: len(sink.received) == 1, what="the forwarded copy")
    settle(srv)
    got = sink.received[0]
    assert got.rcpts == ["friend@remote.example"]
    assert our_signatures(got.data) == []
    # SRS: the next hop sees our domain as sender; bounces find the author.
    assert got.mail_from.upper().startswith("SRS0=")
    assert got.mail_from.endswith("@" + HOSTNAME)
    srs = SrsRewriter(load_secret(srv.data_dir), HOSTNAME)
    assert srs.reverse(got.mail_from.rpartition("@")[0]) == "attacker@evil.example"
    # The RET=FULL NOTIFY=SUCCESS oracle: no "relayed" notice, signed or not.
    assert notices(srv) == 0
    assert [r.rcpts for r in sink.received] == [["friend@remote.example"]]


def test_our_notice_about_forwarded_mail_goes_to_the_author_with_headers_only(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = world
    sink.rcpt_replies["friend@remote.example"] = ["550 5.1.1 no such user"]
    with srv.smtp("smtp") as client:
        client.ehlo("evil.example")
        assert client.mail("attacker@evil.example", ["RET=FULL"])[0] == 250
        assert client.rcpt("fwd@test.local")[0] == 250
        assert client.data(FORGED)[0] == 250
    wait_until(lambda: len(sink.received) == 1, what="the failure notice")
    settle(srv)
    notice = sink.received[0]
    # straight to the author the SRS sender stands for, not round to ourselves
    assert notice.rcpts == ["attacker@evil.example"] and notice.mail_from == ""
    assert b"Status: 5.1.1" in notice.data
    assert b"Subject: pay this" in notice.data  # the headers, as RET=HDRS
    assert b"Wire the money" not in notice.data  # never the content: the sender is unverified
    assert all(b"d=test.local" not in sig for sig in our_signatures(notice.data))


def test_a_bounce_to_the_srs_address_reaches_the_author(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = world
    srs = SrsRewriter(load_secret(srv.data_dir), HOSTNAME)
    address = srs.forward("author@remote.example")
    bounce = b"From: MAILER-DAEMON@remote.example\r\nSubject: failed\r\n\r\nsorry\r\n"
    with srv.smtp("smtp") as client:
        client.ehlo("remote.example")
        assert client.mail("")[0] == 250
        assert client.rcpt(address)[0] == 250
        assert client.data(bounce)[0] == 250
    wait_until(lambda: len(sink.received) == 1, what="the bounce going back")
    assert sink.received[0].rcpts == ["author@remote.example"]
    assert sink.received[0].mail_from == ""
    assert our_signatures(sink.received[0].data) == []


@pytest.mark.parametrize(
    ("sender", "local", "says"),
    [
        ("", "SRS0=AAAAAA=AA=remote.example=author", "Bad SRS address"),  # forged hash
        ("someone@remote.example", None, "only bounces"),  # not a bounce
        ("", "expired", "expired"),
    ],
)
def test_srs_addresses_we_did_not_make_are_refused(
    world: tuple[RunningServer, SmtpSink], sender: str, local: str | None, says: str,
) -> None:
    srv, sink = world
    srs = SrsRewriter(load_secret(srv.data_dir), HOSTNAME)
    if local is None:
        address = srs.forward("author@remote.example")
    elif local == "expired":
        address = srs.forward("author@remote.example", now=time.time() - 30 * 86400)
    else:
        address = f"{local}@{HOSTNAME}"
    with srv.smtp("smtp") as client:
        client.ehlo("remote.example")
        assert client.mail(sender)[0] == 250
        code, text = client.rcpt(address)
    assert code == 550 and says in text.decode()
    assert sink.received == []


def submit(
    srv: RunningServer, login: str, message: bytes, sender: str | None = None
) -> tuple[int, str]:
    with srv.smtp("submissions") as client:
        client.login(login, PASSWORD)
        try:
            client.sendmail(sender or login, ["friend@remote.example"], message)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode()
    return 250, ""


def letter(*headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return (head + "To: friend@remote.example\r\nSubject: hi\r\n\r\nhello\r\n").encode()


@pytest.mark.parametrize(
    "headers",
    [
        ("From: CEO <ceo@test.local>",),
        ("From: ceo@test.local",),
        ('From: "ceo@test.local" <carol@other.test>',),  # display-name trick
        ("From: =?utf-8?q?ceo=40test=2Elocal?= <carol@other.test>",),  # encoded word
        ("From: carol@other.test (ceo@test.local)",),  # comment
        ("From: ceo@test.local (carol@other.test)",),
        ("From: carol@other.test <ceo@test.local>",),  # ambiguous: readers differ
        ("From: carol@other.test, ceo@test.local",),  # several authors
        ("From: carol@other.test", "From: ceo@test.local"),  # two From fields
        ("From: carol@other.test", "Sender: ceo@test.local"),
        ("From : ceo@test.local",),  # obsolete spacing some readers honour
        ("From: \"ceo\uff20test.local\" <carol@other.test>",),  # full-width @
        ("From: ceo@TEST.LOCAL",),
        ("To: x@test.local",),  # no From at all
        # a second From: behind more header than the check reads
        ("From: carol@other.test", *["X-Pad: " + "a" * 900] * 300, "From: ceo@test.local"),
    ],
)
def test_a_tenant_cannot_send_as_another_hosted_domain(
    world: tuple[RunningServer, SmtpSink], headers: tuple[str, ...],
) -> None:
    srv, sink = world
    code, text = submit(srv, "carol@other.test", letter(*headers))
    assert code == 550 and text.startswith("5.7.1"), (code, text)
    settle(srv)
    assert sink.received == []


def test_own_addresses_and_grants_are_signed_and_verify(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = world
    assert submit(srv, "bob@test.local", letter("From: Bob Smith <Bob@Test.Local>")) == (250, "")
    srv.directory.add_send_as("carol@other.test", "info@test.local")
    assert submit(srv, "carol@other.test",
                  letter('From: "Info desk" <info@test.local>', "Sender: carol@other.test"),
                  sender="carol@other.test") == (250, "")
    wait_until(lambda: len(sink.received) == 2, what="both submissions")
    by_sender = {r.mail_from: r.data for r in sink.received}
    bob, carol = by_sender["bob@test.local"], by_sender["carol@other.test"]
    assert b"d=test.local" in our_signatures(bob)[0] and verifies(srv, bob, "test.local")
    assert b"d=test.local" in our_signatures(carol)[0] and verifies(srv, carol, "test.local")
    srv.directory.delete_send_as("carol@other.test", "info@test.local")
    code, _ = submit(srv, "carol@other.test", letter("From: info@test.local"),
                     sender="carol@other.test")
    assert code == 550


def test_idn_author_in_unicode_is_the_same_domain(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = world
    srv.add_user("me@xn--bcher-kva.test")
    message = "From: Me <me@bücher.test>\r\nTo: friend@remote.example\r\nSubject: idn\r\n\r\nx\r\n"
    with srv.smtp("submissions") as client:
        client.login("me@xn--bcher-kva.test", PASSWORD)
        client.sendmail("me@xn--bcher-kva.test", ["friend@remote.example"],
                        message.encode(), mail_options=["SMTPUTF8"])
    wait_until(lambda: len(sink.received) == 1, what="the IDN submission")
    assert b"d=xn--bcher-kva.test" in our_signatures(sink.received[0].data)[0]
    # and a look-alike domain in Unicode is someone else's
    code, _ = submit(srv, "me@xn--bcher-kva.test", letter("From: me@bücher.example"),
                     sender="me@xn--bcher-kva.test")
    assert code == 550
    assert len(sink.received) == 1


def test_a_relay_network_is_signed_without_srs_but_gets_no_success_notice(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    srv, sink = world
    sink.offer_dsn = True
    srv.directory.delete_relay_network("192.0.2.0/24")  # loopback is the relay network again
    with srv.smtp("smtp") as client:
        client.ehlo("web.test.local")
        assert client.mail("bob@test.local", ["RET=FULL"])[0] == 250
        assert client.rcpt("friend@remote.example", ["NOTIFY=SUCCESS,FAILURE"])[0] == 250
        assert client.data(letter("From: Bob <bob@test.local>"))[0] == 250
    wait_until(lambda: len(sink.received) == 1, what="the relayed message")
    got = sink.received[0]
    assert got.mail_from == "bob@test.local"  # a trusted host's sender is kept
    assert verifies(srv, got.data, "test.local")
    assert "NOTIFY=FAILURE" in got.rcpt_params[0]  # SUCCESS only for a logged-in sender
    assert "RET=HDRS" in got.mail_params  # and full content in a notice only for one too


@pytest.mark.parametrize("name", ['x" <ceo@test.local>, "y', "ceo@test.local", "Carol Kim"])
def test_a_vacation_reply_is_signed_only_for_its_account_whatever_its_display_name(
    world: tuple[RunningServer, SmtpSink], name: str,
) -> None:
    """A display name that reads as another hosted address never gets that domain's key."""
    from email.utils import getaddresses

    from nmail.directory.mail_rules import MailRulesStore, Vacation

    srv, sink = world
    carol = srv.directory.set_display_name("carol@other.test", name)
    MailRulesStore(srv.runtime.engine, srv.runtime.clock).set_vacation(
        carol.id, True, Vacation("away", "Pay invoice 42 today.", 7, 0))
    with srv.smtp("smtp") as client:
        client.ehlo("remote.example")
        client.sendmail("victim@remote.example", ["carol@other.test"],
                        b"From: victim@remote.example\r\nTo: carol@other.test\r\n"
                        b"Subject: hello\r\n\r\nhi\r\n")
    wait_until(lambda: len(sink.received) == 1, what="the vacation reply")
    reply = sink.received[0]
    assert reply.rcpts == ["victim@remote.example"]
    head = re.sub(rb"\r\n[ \t]+", b" ", reply.data.split(b"\r\n\r\n", 1)[0]).decode()
    froms = [line[5:] for line in head.split("\r\n") if line.lower().startswith("from:")]
    assert [a for _, a in getaddresses(froms)] == ["carol@other.test"]
    signatures = our_signatures(reply.data)
    assert all(b"d=test.local" not in sig for sig in signatures)
    if "@" not in name:  # an honest name: signed by its own domain, and it verifies
        assert b"d=other.test" in signatures[0] and verifies(srv, reply.data, "other.test")
