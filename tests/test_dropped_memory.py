"""Issue 9 item 2: connections dropped mid-DATA (or mid-RETR) leave no memory behind.

200 SMTP clients each send 8 MiB of a message and vanish; the serving
process's resident memory (from /proc) must come back to within 20 MiB of
where it stood before them. Before the fix a closed session stayed alive
through a reference cycle with its whole buffer (+375 MiB for 50).
"""

from __future__ import annotations

import smtplib
import socket
import threading
from pathlib import Path

from proc_tree import rss_bytes
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data, smtp_reply
from support import wait_until

USER = "bob@test.local"
MIB = 1024 * 1024
CHUNK = (b"z" * 998 + b"\r\n") * 1049  # 1 MiB of legal 1,000-octet lines


def drop_mid_data(port: int, mib: int) -> None:
    """A session that sends `mib` MiB after DATA's 354, then disappears (RST)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        smtp_reply(sock)
        for command in (
            b"EHLO dropper.test",
            b"MAIL FROM:<a@b.example>",
            b"RCPT TO:<" + USER.encode() + b">",
        ):
            sock.sendall(command + b"\r\n")
            assert smtp_reply(sock).startswith(b"250")
        sock.sendall(b"DATA\r\n")
        assert smtp_reply(sock).startswith(b"354")
        sock.sendall(b"Subject: never ends\r\n\r\n")
        for _ in range(mib):
            sock.sendall(CHUNK)
        # An abrupt end, as a client that crashed or lost its link.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")


def drop_many(port: int, count: int, mib: int, at_once: int = 10) -> None:
    for start in range(0, count, at_once):
        threads = [
            threading.Thread(target=drop_mid_data, args=(port, mib))
            for _ in range(min(at_once, count - start))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def test_dropped_sessions_give_their_memory_back(tmp_path: Path) -> None:
    data = make_data(tmp_path, USER)
    ports = listen_specs("smtp")
    srv = ServeProcess(data, *as_options(ports), workers=1)  # one process serves it all
    try:
        pid = srv.proc.pid
        drop_many(ports["smtp"], 10, 8)  # everything a session uses is loaded now
        wait_until(lambda: rss_bytes(pid) < 400 * MIB, 30, "warm-up settled")
        before = rss_bytes(pid)
        drop_many(ports["smtp"], 200, 8)
        peak = rss_bytes(pid)

        def settled() -> bool:
            return rss_bytes(pid) <= before + 20 * MIB

        try:
            wait_until(settled, 30, "memory given back")
        except AssertionError:
            raise AssertionError(
                f"RSS {before // MIB} MiB before, {peak // MIB} after the drops,"
                f" {rss_bytes(pid) // MIB} now"
            ) from None
    finally:
        assert srv.stop()[0] == 0


def test_a_large_message_arrives_whole_through_the_spill(tmp_path: Path) -> None:
    """3 MiB (with dot-stuffed lines) waits in the spill file and is stored exactly."""
    data = make_data(tmp_path, USER)
    ports = listen_specs("smtp")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    body = b"Subject: large\r\n\r\n" + (b".dotted line\r\n" + b"q" * 998 + b"\r\n") * 3000
    try:
        with socket.create_connection(("127.0.0.1", ports["smtp"]), timeout=60) as sock:
            smtp_reply(sock)
            for command in (
                b"EHLO big.test",
                b"MAIL FROM:<a@b.example>",
                f"RCPT TO:<{USER}>".encode(),
            ):
                sock.sendall(command + b"\r\n")
                assert smtp_reply(sock).startswith(b"250")
            sock.sendall(b"DATA\r\n")
            assert smtp_reply(sock).startswith(b"354")
            sock.sendall(body.replace(b"\r\n.", b"\r\n..") + b".\r\n")
            assert smtp_reply(sock).startswith(b"250")
        inbox = data / "mail" / "test.local" / "bob" / "Maildir" / "new"
        (stored,) = list(inbox.iterdir())
        assert stored.read_bytes().endswith(b"\r\n" + body)
        assert list((data / "spool").iterdir()) == []
    finally:
        assert srv.stop()[0] == 0


def drop_mid_retr(port: int) -> None:
    """A POP3 client that asks for a large message, reads a little of it and vanishes."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
        assert stream.readline().startswith(b"+OK")
        assert stream.readline().startswith(b"+OK")
        sock.sendall(b"RETR 1\r\n")
        assert stream.readline().startswith(b"+OK")
        stream.read(64 * 1024)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")


def test_dropped_pop3_sessions_give_their_memory_back(tmp_path: Path) -> None:
    data = make_data(tmp_path, USER)
    ports = listen_specs("smtp", "pop3")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=60) as client:
            client.sendmail("a@b.example", [USER], b"Subject: big\r\n\r\n" + CHUNK * 4)
        pid = srv.proc.pid
        for _ in range(10):
            drop_mid_retr(ports["pop3"])
        before = rss_bytes(pid)
        for _ in range(30):  # one at a time: the maildrop allows one session
            drop_mid_retr(ports["pop3"])
        wait_until(lambda: rss_bytes(pid) <= before + 20 * MIB, 30, "memory given back")
    finally:
        assert srv.stop()[0] == 0
