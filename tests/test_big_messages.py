"""Issue 9 item 2: large messages go from their spool file to every destination.

A real `nmail serve` (one process) takes several 24 MiB messages at once:
local deliveries (one to two mailboxes), one relayed to an outside address
(queued), one submission (queued and DKIM-signed, with a local copy). Its
peak resident memory (VmHWM after clear_refs) must grow by well under the
sum of the messages (a quarter); the files, index rows, queue bodies and
signature must be exact (on PostgreSQL and MariaDB too, with 3 MiB messages:
the database holds rows, never bodies). Bad large messages (bare LF or a long line far
into them, over the size limit, over quota, a connection dropped at the
end of DATA) get their 4xx/5xx and leave nothing behind; a full disk
(in-process, os.copy_file_range failing) gives 451 and loses nothing.
"""

from __future__ import annotations

import base64
import errno
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from sqlalchemy import select

from fixtures_dns import DnsServer
from fixtures_smtp_sink import SmtpSink
from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.db.tables import accounts, folders, messages
from nmail.directory import Directory
from nmail.directory.sizes import parse_size
from nmail.queue import envelope_line
from nmail.queue.dkim import DkimKeys, public_record
from nmail.servers.data_spool import FileSpill
from proc_tree import rss_bytes
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data, set_option, smtp_reply
from server_rig import RunningServer, make_data_dir
from support import LoopThread, free_port, wait_until

pytestmark = pytest.mark.timeout(600)

MIB = 1024 * 1024
BOB, CAROL, DAN = "bob@test.local", "carol@test.local", "dan@test.local"
FRIEND = "friend@remote.example"


def big_message(mib: int, sender: str, tag: str) -> bytes:
    """A multipart message of about `mib` MiB: a text part with dotted lines, then a
    base64 attachment (random, so nothing compresses it)."""
    text = b"".join(b".line %d of the text, starting with a dot\r\n" % i for i in range(2000))
    raw = os.urandom(mib * MIB * 3 // 4)
    encoded = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return (
        f"From: Sender <{sender}>\r\nTo: someone@test.local\r\nSubject: big {tag}\r\n"
        f"Message-ID: <{tag}@test.local>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="=b="\r\n\r\n'
        '--=b=\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n'.encode()
        + text
        + b"--=b=\r\nContent-Type: application/octet-stream; name=data.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--=b=--\r\n"
    )


def stuffed(message: bytes) -> bytes:
    """The DATA form of a CRLF message: dots doubled, terminator added."""
    body = message.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    return body + b".\r\n"


def send(port: int, sender: str, rcpts: list[str], message: bytes, *,
         login: str | None = None, drop_at_end: bool = False,
         before_data: Callable[[], object] | None = None) -> bytes:
    """One transaction over a raw socket; the reply to the end of DATA.

    `before_data` is called once the recipients are accepted."""
    with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:
        smtp_reply(sock)
        sock.sendall(b"EHLO big.test\r\n")
        assert smtp_reply(sock).startswith(b"250")
        if login is not None:
            token = base64.b64encode(f"\0{login}\0{PASSWORD}".encode())
            sock.sendall(b"AUTH PLAIN " + token + b"\r\n")
            assert smtp_reply(sock).startswith(b"235")
        sock.sendall(f"MAIL FROM:<{sender}>\r\n".encode())
        assert smtp_reply(sock).startswith(b"250")
        for rcpt in rcpts:
            sock.sendall(f"RCPT TO:<{rcpt}>\r\n".encode())
            reply = smtp_reply(sock)
            assert reply.startswith(b"250"), reply
        if before_data is not None:
            before_data()
        sock.sendall(b"DATA\r\n")
        assert smtp_reply(sock).startswith(b"354")
        data = stuffed(message)
        view = memoryview(data)
        for start in range(0, len(view), MIB):
            sock.sendall(view[start : start + MIB])
        if drop_at_end:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            return b""
        return smtp_reply(sock)


def peak_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def maildir_files(data: Path, address: str) -> list[Path]:
    userid, domain = address.split("@")
    base = data / "mail" / domain / userid / "Maildir"
    return sorted(p for sub in ("new", "cur") for p in (base / sub).iterdir())


def stray_files(data: Path) -> list[Path]:
    """What a failed delivery could leave: spool files, Maildir tmp/ files, queue temporaries."""
    found = list((data / "spool").iterdir()) if (data / "spool").exists() else []
    found += [p for p in (data / "mail").glob("*/*/Maildir/tmp/*")]
    found += [p for p in (data / "queue").glob(".*.tmp")]
    return found


def silent_dns() -> socket.socket:
    """A UDP port that never answers: outside domains stay unresolved (the queue
    keeps their bodies and never reads them for sending during the test)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve(tmp_path: Path, dns: socket.socket, database_url: str | None = None,
          **smtp: str) -> tuple[Path, dict[str, int], ServeProcess]:
    data = make_data(tmp_path, BOB, CAROL, DAN, database_url=database_url)
    set_option(data, "dns", "nameservers", f'["127.0.0.1:{dns.getsockname()[1]}"]')
    for key, value in smtp.items():
        set_option(data, "smtp", key, value)
    ports = listen_specs("smtp", "submission")
    return data, ports, ServeProcess(data, *as_options(ports), workers=1)


def check_delivered(data: Path, address: str, message: bytes, sender: str) -> Path:
    """The one file in `address`'s INBOX with `message`'s tag holds it exactly, behind
    our trace headers."""
    tag = re.search(rb"Subject: (big \w+)", message)
    assert tag is not None
    found = [p for p in maildir_files(data, address) if tag.group(1) in p.read_bytes()[:4096]]
    assert len(found) == 1, (address, found)
    stored = found[0].read_bytes()
    assert stored.endswith(message)
    trace = stored[: len(stored) - len(message)]
    assert trace.startswith(f"Return-Path: <{sender}>\r\nDelivered-To: {address}\r\n".encode())
    assert b"\r\nReceived: from big.test" in b"\r\n" + trace
    return found[0]


def queued_bodies(data: Path) -> dict[str, bytes]:
    """Each queue body's message (envelope line off) by its first recipient."""
    bodies: dict[str, bytes] = {}
    for path in (data / "queue").glob("*.eml"):
        line, message = envelope_line.split(path.read_bytes())
        assert line is not None
        _, rcpts = envelope_line.decode(line, path.stem, len(message))
        bodies[rcpts[0].address] = message
    return bodies


def verifies(database_url: str, signed: bytes) -> bool:
    engine = make_engine(database_url)
    try:
        pem = DkimKeys(engine).get("test.local", "nmail")
    finally:
        engine.dispose()
    assert pem is not None
    record = public_record(pem).encode()
    return bool(dkim.verify(signed, dnsfunc=lambda name, timeout=5: record))


def test_parallel_large_messages_keep_memory_bounded(tmp_path: Path, db_url: str) -> None:
    # The memory bound is measured with 24 MiB messages on SQLite. The bodies
    # go from the spool file to the mailbox and queue files and never through
    # the database, which holds their rows; on the servers, messages of 3 MiB
    # (spooled: past the first MiB) prove the rows, files, queue bodies and
    # signature there at an eighth of the traffic (16 s -> 5 s a server).
    measured = db_url.startswith("sqlite:")
    mib = 24 if measured else 3
    dns = silent_dns()
    data, ports, srv = serve(tmp_path, dns, db_url)
    try:
        pid = srv.proc.pid
        # Warm-up: every path below once, small and spooled, loads its code.
        for size in (1, 2):
            warm = big_message(size, "warm@outside.example", f"warm{size}")
            assert send(ports["smtp"], "warm@outside.example", [BOB], warm).startswith(b"250")
        wait_until(lambda: not stray_files(data), 60, "warm-up files gone")

        jobs: list[tuple[str, list[str], bytes, str | None, int]] = [
            ("a@outside.example", [BOB], big_message(mib, "a@outside.example", "one"),
             None, ports["smtp"]),
            ("b@outside.example", [CAROL, DAN], big_message(mib, "b@outside.example", "two"),
             None, ports["smtp"]),
            ("c@outside.example", [DAN], big_message(mib, "c@outside.example", "three"),
             None, ports["smtp"]),
            # Loopback is a relay network (none listed): relayed, queued, not ours to sign.
            ("d@outside.example", [FRIEND], big_message(mib, "d@outside.example", "four"),
             None, ports["smtp"]),
            # A submission: signed with test.local's key, a local copy too.
            (BOB, ["else@remote.example", CAROL], big_message(mib, BOB, "five"),
             BOB, ports["submission"]),
        ]
        replies: dict[int, bytes] = {}
        # Every session logs in and names its recipients first: AUTH's Argon2
        # alone takes 64 MiB for a moment, and is not what is measured.
        ready = threading.Barrier(len(jobs) + 1, timeout=120)
        go = threading.Barrier(len(jobs) + 1, timeout=120)

        def run(i: int) -> None:
            sender, rcpts, message, login, port = jobs[i]
            replies[i] = send(port, sender, rcpts, message, login=login,
                              before_data=lambda: (ready.wait(), go.wait()))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        ready.wait()
        before = rss_bytes(pid)
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS now
        go.wait()
        for thread in threads:
            thread.join()
        assert all(replies[i].startswith(b"250") for i in range(len(jobs))), replies
        growth = peak_bytes(pid) - before
        total = sum(len(job[2]) for job in jobs)
        if measured:
            assert growth < total // 4, f"peak grew {growth // MIB} MiB for {total // MIB} MiB"

        check_delivered(data, BOB, jobs[0][2], "a@outside.example")
        check_delivered(data, CAROL, jobs[1][2], "b@outside.example")
        check_delivered(data, DAN, jobs[1][2], "b@outside.example")
        check_delivered(data, DAN, jobs[2][2], "c@outside.example")
        check_delivered(data, CAROL, jobs[4][2], BOB)

        engine = make_engine(load_config(data).database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(messages.c.subject, messages.c.size, messages.c.has_attachments,
                           messages.c.preview, messages.c.filename, accounts.c.userid)
                    .join(folders, folders.c.id == messages.c.folder_id)
                    .join(accounts, accounts.c.id == folders.c.account_id)
                ).all()
        finally:
            engine.dispose()
        big = {(row.userid, row.subject): row for row in rows if row.subject.startswith("big ")}
        for userid, subject, message in (("bob", "big one", jobs[0][2]),
                                         ("carol", "big two", jobs[1][2]),
                                         ("dan", "big three", jobs[2][2]),
                                         ("carol", "big five", jobs[4][2])):
            row = big[(userid, subject)]
            (path,) = [p for p in maildir_files(data, f"{userid}@test.local")
                       if p.name.startswith(row.filename)]
            assert row.size == path.stat().st_size > len(message)
            assert row.has_attachments
            assert row.preview.startswith(".line 0 of the text")

        bodies = queued_bodies(data)
        relayed = bodies[FRIEND]
        assert relayed.endswith(jobs[3][2]) and relayed.startswith(b"Received: from big.test")
        assert b"DKIM-Signature" not in relayed[:4096]
        signed = bodies["else@remote.example"]
        assert signed.startswith(b"DKIM-Signature: ") and signed.endswith(jobs[4][2])
        assert verifies(load_config(data).database_url, signed)
        assert not stray_files(data)
    finally:
        assert srv.stop()[0] == 0
        dns.close()


def test_bad_large_messages_leave_nothing(tmp_path: Path) -> None:
    dns = silent_dns()
    data, ports, srv = serve(tmp_path, dns, max_message_size=str(8 * MIB))
    # What `nmail user quota`, `alias add` and `relay add` do, without a Python
    # start each (the running server sees them the same way: the directory's
    # generation moves).
    engine = make_engine(load_config(data).database_url)
    try:
        directory = Directory(engine)
        directory.set_quota(DAN, parse_size("3M"))
        directory.add_alias("team@test.local", [CAROL, FRIEND])
        directory.add_relay_network("192.0.2.0/24")
    finally:
        engine.dispose()
    port = ports["smtp"]
    try:
        good = big_message(3, "a@outside.example", "fine")
        # Far past the first (spilled) megabyte: a bare LF, a line of 1,201 octets.
        bare = big_message(3, "a@outside.example", "bare")
        bare = bare[: 2 * MIB] + bare[2 * MIB :].replace(b"\r\n", b"\n", 1)
        long = big_message(3, "a@outside.example", "long")
        cut = long.index(b"\r\n", 2 * MIB) + 2
        long = long[:cut] + b"x" * 1199 + b"\r\n" + long[cut:]
        assert b"bare CR or LF" in send(port, "a@outside.example", [BOB], bare)
        assert b"longer than 1000" in send(port, "a@outside.example", [BOB], long)
        over = big_message(9, "a@outside.example", "over")
        assert send(port, "a@outside.example", [BOB], over).startswith(b"552")
        full = send(port, "a@outside.example", [DAN], good)  # 3 MiB against a 3 MiB quota
        assert full.startswith(b"552"), full
        mixed = send(port, "a@outside.example", [BOB, DAN], good)
        assert mixed.startswith(b"452"), mixed
        assert maildir_files(data, BOB) == [] and maildir_files(data, DAN) == []

        # The client vanishes as the terminator arrives: stored once or not at all.
        send(port, "a@outside.example", [CAROL], good, drop_at_end=True)
        wait_until(lambda: not stray_files(data), 60, "the dropped message's files gone")
        kept = maildir_files(data, CAROL)
        assert len(kept) <= 1
        if kept:
            assert kept[0].read_bytes().endswith(good)
        assert send(port, "a@outside.example", [BOB], good).startswith(b"250")
        check_delivered(data, BOB, good, "a@outside.example")

        # An alias to a mailbox and an outside address: stored, and forwarded
        # unsigned with an SRS sender (loopback is no relay network here).
        forwarded = big_message(3, "a@outside.example", "alias")
        assert send(port, "a@outside.example", ["team@test.local"], forwarded).startswith(b"250")
        check_delivered(data, CAROL, forwarded, "a@outside.example")
        (path,) = (data / "queue").glob("*.eml")
        line, body = envelope_line.split(path.read_bytes())
        assert line is not None
        info, _ = envelope_line.decode(line, path.stem, len(body))
        assert info.sender.upper().startswith("SRS0=")
        assert body.startswith(b"Received: from big.test") and body.endswith(forwarded)
        assert b"DKIM-Signature" not in body[:4096]
        assert not stray_files(data)
    finally:
        assert srv.stop()[0] == 0
        dns.close()


def failing_copies(where: str) -> Callable[..., int]:
    """os.copy_file_range that reports a full disk when writing under `where`."""
    real = os.copy_file_range

    def copy(src: int, dst: int, count: int, *args: object) -> int:
        if where in os.readlink(f"/proc/self/fd/{dst}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, count, *args)  # type: ignore[arg-type]

    return copy


def test_a_full_spool_disk_gives_452_and_the_session_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_data_dir(tmp_path)
    with RunningServer(data, listeners=("smtp",)) as srv:
        srv.add_user(BOB)
        message = big_message(3, "a@outside.example", "spool")

        def full(self: FileSpill, content: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(FileSpill, "write", full)
        reply = send(srv.port("smtp"), "a@outside.example", [BOB], message)
        assert reply.startswith(b"452 4.3.1"), reply
        assert maildir_files(data, BOB) == [] and not stray_files(data)
        monkeypatch.undo()
        assert send(srv.port("smtp"), "a@outside.example", [BOB], message).startswith(b"250")
        check_delivered(data, BOB, message, "a@outside.example")


@pytest.mark.parametrize("where", ["/Maildir/", "/queue/"])
def test_a_full_disk_gives_451_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    data = make_data_dir(tmp_path)
    dns = silent_dns()
    set_option(data, "dns", "nameservers", f'["127.0.0.1:{dns.getsockname()[1]}"]')
    with dns, RunningServer(data, listeners=("smtp",)) as srv:
        srv.add_user(BOB)
        message = big_message(3, "a@outside.example", "disk")
        monkeypatch.setattr(os, "copy_file_range", failing_copies(where))
        # Local and relayed (loopback relays): the queue's failure takes the local copy back.
        reply = send(srv.port("smtp"), "a@outside.example", [BOB, FRIEND], message)
        assert reply.startswith(b"451"), reply
        assert maildir_files(data, BOB) == []
        assert list((data / "queue").glob("*.eml")) == []
        assert not stray_files(data)
        monkeypatch.undo()
        reply = send(srv.port("smtp"), "a@outside.example", [BOB, FRIEND], message)
        assert reply.startswith(b"250"), reply
        check_delivered(data, BOB, message, "a@outside.example")
        assert queued_bodies(data)[FRIEND].endswith(message)
        assert not stray_files(data)


def test_large_queued_messages_leave_from_their_files(tmp_path: Path) -> None:
    """Three 24 MiB messages relayed at once to an outside MX (a sink) arrive exact,
    and the one process that took them in and sent them out grows by a quarter
    of their size at most (each used to be read whole and copied to be sent)."""
    dns = DnsServer().start()
    dns.mx("remote.example", (10, "mx.remote.example"))
    dns.add("mx.remote.example", "A", "127.0.0.2")
    loop = LoopThread()
    sink = SmtpSink("127.0.0.2", free_port("127.0.0.2"), name="mx.remote.example")
    loop.run(sink.start())
    data = make_data(tmp_path, BOB)
    set_option(data, "dns", "nameservers", f'["{dns.address}"]')
    set_option(data, "queue", "remote_port", str(sink.port))
    ports = listen_specs("smtp")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        pid = srv.proc.pid
        for size in (1, 2):  # warm-up: both ways of sending, once
            warm = big_message(size, "w@outside.example", f"warm{size}")
            assert send(ports["smtp"], "w@outside.example", [FRIEND], warm).startswith(b"250")
        wait_until(lambda: len(sink.received) == 2, 120, "the warm-up messages sent")
        wait_until(lambda: not list((data / "queue").glob("*.eml")), 60, "warm-up bodies gone")
        sent = [big_message(24, f"{tag}@outside.example", tag) for tag in ("q1", "q2", "q3")]
        ready = threading.Barrier(len(sent) + 1, timeout=120)
        go = threading.Barrier(len(sent) + 1, timeout=120)
        replies: dict[int, bytes] = {}

        def run(i: int) -> None:
            replies[i] = send(ports["smtp"], f"q{i + 1}@outside.example",
                              [f"to{i}@remote.example"], sent[i],
                              before_data=lambda: (ready.wait(), go.wait()))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sent))]
        for thread in threads:
            thread.start()
        ready.wait()
        before = rss_bytes(pid)
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        go.wait()
        for thread in threads:
            thread.join()
        assert all(reply.startswith(b"250") for reply in replies.values()), replies
        wait_until(lambda: len(sink.received) == 5, 300, "the large messages sent")
        growth = peak_bytes(pid) - before
        total = sum(len(message) for message in sent)
        assert growth < total // 4, f"peak grew {growth // MIB} MiB for {total // MIB} MiB"
        got = {item.rcpts[0]: item.data for item in sink.received[2:]}
        for i, message in enumerate(sent):
            data_sent = got[f"to{i}@remote.example"]
            assert data_sent.startswith(b"Received: from big.test") and data_sent.endswith(message)
        wait_until(lambda: not list((data / "queue").glob("*.eml")), 60, "bodies removed")
    finally:
        assert srv.stop()[0] == 0
        loop.run(sink.stop())
        loop.close()
        dns.stop()
