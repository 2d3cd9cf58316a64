"""Issue 2 end to end: a real nmail (Runtime with every part) and real clients."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from crashed_writer import killed_writer
from nmail.db.tables import folders, messages
from server_rig import RunningServer, make_data_dir

BODY = (
    b"From: Alice <alice@remote.example>\r\n"
    b"To: Bob <bob@test.local>\r\n"
    b"Subject: =?UTF-8?B?7JWI64WV7ZWY7IS47JqU?=\r\n"
    b"Message-ID: <m1@remote.example>\r\n"
    b"Date: Wed, 25 Nov 2026 10:00:00 +0900\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b".leading dot line\r\n"
    b"\xed\x95\x9c\xea\xb8\x80 8-bit body\r\n"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(make_data_dir(tmp_path)) as srv:
        srv.add_user("bob@test.local")
        yield srv


def files(path: Path) -> list[Path]:
    return sorted(p for sub in ("new", "cur") for p in (path / sub).iterdir())


def only_file(path: Path) -> bytes:
    found = files(path)
    assert len(found) == 1, found
    return found[0].read_bytes()


def test_delivery_stores_exact_bytes_with_trace_headers_and_index_row(
    server: RunningServer,
) -> None:
    with server.smtp() as client:
        client.ehlo("client.example")
        refused = client.sendmail("alice@remote.example", ["bob@test.local"], BODY)
    assert refused == {}
    stored = only_file(server.maildir("bob@test.local"))
    head, _, rest = stored.partition(b"From: Alice")
    assert b"From: Alice" + rest == BODY  # the bytes sent, dot-unstuffed, untouched
    assert head.startswith(
        b"Return-Path: <alice@remote.example>\r\nDelivered-To: bob@test.local\r\n"
    )
    assert b"Received: from client.example ([127.0.0.1])" in head
    assert b"for <bob@test.local>" in head
    with server.runtime.engine.connect() as conn:
        row = conn.execute(select(messages)).one()
    assert row.subject == "안녕하세요"
    assert row.from_addr == "alice@remote.example"
    assert row.from_name == "Alice"
    assert row.message_id == "m1@remote.example"
    assert row.size == len(stored)
    assert row.uid == 1
    assert row.preview.startswith("Hello Bob")
    log = next((server.data_dir / "logs").glob("delivery-*.log")).read_text()
    fields = log.strip().split("\t")
    assert fields[2:6] == ["alice@remote.example", "bob@test.local", str(len(BODY)), "stored"]


def test_alias_catchall_and_domain_alias_delivery(server: RunningServer) -> None:
    d = server.directory
    server.add_user("carol@test.local")
    d.add_alias("team@test.local", ["bob@test.local", "carol@test.local"])
    d.add_domain("other.test")
    server.add_user("dave@other.test")
    d.set_catchall("other.test", "dave@other.test")
    d.add_domain_alias("alias.test", "test.local")
    with server.smtp() as client:
        assert client.sendmail("x@remote.example", ["team@test.local"], BODY) == {}
        assert client.sendmail("x@remote.example", ["whoever@other.test"], BODY) == {}
        assert client.sendmail("x@remote.example", ["carol@alias.test"], BODY) == {}
    assert len(files(server.maildir("bob@test.local"))) == 1
    assert len(files(server.maildir("carol@test.local"))) == 2
    assert len(files(server.maildir("dave@other.test"))) == 1


def test_one_copy_per_mailbox_when_two_recipients_reach_it(server: RunningServer) -> None:
    server.directory.add_alias("bobby@test.local", ["bob@test.local"])
    with server.smtp() as client:
        client.sendmail("x@remote.example", ["bob@test.local", "bobby@test.local"], BODY)
    assert len(files(server.maildir("bob@test.local"))) == 1


def rcpt_reply(
    server: RunningServer, rcpt: str, sender: str = "x@remote.example", size: int | None = None
) -> tuple[int, bytes]:
    with server.smtp() as client:
        client.ehlo("client.example")
        opts = [f"SIZE={size}"] if size is not None else []
        code, _ = client.mail(sender, opts)
        assert code == 250
        return client.rcpt(rcpt)


def test_unknown_user_is_550_5_1_1(server: RunningServer) -> None:
    code, text = rcpt_reply(server, "nobody@test.local")
    assert (code, text) == (550, b"5.1.1 Mailbox unavailable <nobody@test.local>")


def test_receive_disabled_is_550_5_2_1(server: RunningServer) -> None:
    server.directory.set_receive_enabled("bob@test.local", False)
    code, text = rcpt_reply(server, "bob@test.local")
    assert (code, text) == (550, b"5.2.1 Account disabled <bob@test.local>")


def test_over_quota_is_552_5_2_2(server: RunningServer) -> None:
    server.directory.set_quota("bob@test.local", 1000)
    code, text = rcpt_reply(server, "bob@test.local", size=5000)
    assert code == 552
    assert text == (
        b"5.2.2 Requested mail action aborted: exceeded storage allocation - <bob@test.local>"
    )


def test_reject_list_is_550_5_7_1(server: RunningServer) -> None:
    account = server.directory.get_account("bob@test.local")
    assert account is not None
    server.directory.add_reject("bob@test.local", "@spam.example")
    code, text = rcpt_reply(server, "bob@test.local", sender="boss@spam.example")
    assert (code, text) == (550, b"5.7.1 You are registered as spammer (by user's reject list)")
    assert rcpt_reply(server, "bob@test.local", sender="friend@ok.example")[0] == 250


def test_relay_denied_outside_relay_networks(server: RunningServer) -> None:
    # Loopback relays only while the admin listed no networks.
    server.directory.add_relay_network("10.0.0.0/8")
    code, text = rcpt_reply(server, "someone@gmail.example")
    assert (code, text) == (554, b"5.7.1 Relay denied")


def test_size_limit_at_mail_and_at_end_of_data(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    config_file = data / "nmail.toml"
    config_file.write_text(
        config_file.read_text().replace("max_message_size = 52428800", "max_message_size = 2000")
    )
    with RunningServer(data) as srv:
        srv.add_user("bob@test.local")
        with srv.smtp() as client:
            client.ehlo("c.example")
            code, text = client.mail("x@remote.example", ["SIZE=5000"])
            assert (code, text) == (552, b"5.3.4 Message size exceeds the server limit")
            client.rset()
            # No SIZE= this time: the limit is found at the end of DATA.
            assert client.mail("x@remote.example")[0] == 250
            assert client.rcpt("bob@test.local")[0] == 250
            code, text = client.data(BODY + (b"x" * 70 + b"\r\n") * 40)
            assert (code, text) == (552, b"5.3.4 Message size exceeds the server limit")
        assert files(srv.maildir("bob@test.local")) == []


def test_mail_loop_is_554_5_4_6(server: RunningServer) -> None:
    hops = b"".join(b"Received: from hop%d by relay\r\n" % i for i in range(31))
    with server.smtp() as client, pytest.raises(smtplib.SMTPDataError) as err:
        client.sendmail("x@remote.example", ["bob@test.local"], hops + BODY)
    assert err.value.smtp_code == 554
    assert err.value.smtp_error == b"5.4.6 Mail loop detected"
    assert files(server.maildir("bob@test.local")) == []


def test_too_many_recipients_is_452_4_5_3(server: RunningServer) -> None:
    server.directory.set_catchall("test.local", "bob@test.local")
    with server.smtp() as client:
        client.ehlo("c.example")
        client.mail("x@remote.example")
        codes = [client.rcpt(f"u{i}@test.local")[0] for i in range(101)]
        assert codes[:100] == [250] * 100
        assert codes[100] == 452
        code, _ = client.data(BODY)
        assert code == 250
    assert len(files(server.maildir("bob@test.local"))) == 1


def raw_session(port: int, data: bytes) -> bytes:
    """Send `data` at once (pipelined), then read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.recv(1024)  # greeting
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_pipelined_transactions(server: RunningServer) -> None:
    one = (
        b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n"
        b"Subject: pipelined\r\n\r\nbody\r\n.\r\n"
    )
    replies = raw_session(server.port("smtp"), b"EHLO c.example\r\n" + one * 3 + b"QUIT\r\n")
    assert replies.count(b"250 2.0.0 Ok: queued as") == 3
    assert len(files(server.maildir("bob@test.local"))) == 3


def test_disconnect_mid_data_stores_nothing(server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=10) as sock:
        sock.recv(1024)
        sock.sendall(
            b"EHLO c.example\r\nMAIL FROM:<a@remote.example>\r\n"
            b"RCPT TO:<bob@test.local>\r\nDATA\r\nSubject: half\r\n\r\nhalf a mess"
        )
        got = b""
        while b"354" not in got:
            got += sock.recv(4096)
    # The server noticed the close when a later session is served.
    with server.smtp() as client:
        client.noop()
    assert files(server.maildir("bob@test.local")) == []
    assert list((server.maildir("bob@test.local") / "tmp").iterdir()) == []


SMUGGLING = [
    b"\n.\n",
    b"\r.\r",
    b"\r\n.\n",
    b"\n.\r\n",
    b"\r\n.\r",
    b"\r.\r\n",
    b"\n.\r",
    b"\r\n.\r\r\n",
]


@pytest.mark.parametrize("separator", SMUGGLING, ids=repr)
def test_smuggling_never_yields_a_second_message(server: RunningServer, separator: bytes) -> None:
    smuggled = (
        b"MAIL FROM:<evil@remote.example>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\nsecond\r\n.\r\n"
    )
    payload = (
        b"EHLO c.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@test.local>\r\n"
        b"DATA\r\nSubject: first\r\n\r\nfirst" + separator + smuggled + b"\r\n.\r\nQUIT\r\n"
    )
    raw_session(server.port("smtp"), payload)
    stored = files(server.maildir("bob@test.local"))
    assert len(stored) <= 1
    for path in stored:
        assert b"Subject: smuggled" not in path.read_bytes().split(b"\r\n\r\n", 1)[0]


def test_restart_repairs_files_without_index_rows(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    with RunningServer(data) as srv:
        srv.add_user("bob@test.local")
        with srv.smtp() as client:
            client.sendmail("x@remote.example", ["bob@test.local"], BODY)
        with srv.runtime.engine.begin() as conn:
            # As if we crashed after the rename, before COMMIT: no row, counters unmoved.
            conn.execute(messages.delete())
            conn.execute(folders.update().values(next_uid=1, message_count=0, total_size=0))
    killed_writer(data / "mail")  # the crash itself: a writer that never stopped
    with RunningServer(data) as srv:
        srv.runtime.repair()
        with srv.runtime.engine.connect() as conn:
            rows = conn.execute(select(messages.c.uid, messages.c.subject)).all()
    assert [(r.uid, r.subject) for r in rows] == [(1, "안녕하세요")]
