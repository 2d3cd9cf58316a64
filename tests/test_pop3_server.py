"""The POP3 server with poplib on 127.0.0.1: the maildrop, RETR, TOP, UIDL, UPDATE, locks."""

from __future__ import annotations

import poplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import Engine

from manual_timers import ManualTimers
from nmail.mailstore.store import MailStore
from nmail.servers.pop3 import PIECE, Pop3Server, Pop3Settings
from pop3_rig import Pop3Rig
from support import LOOPS, silent_for, wait_until

FIRST = b"From: a@example.net\r\nSubject: first\r\n\r\nHello\r\n.\r\n..two dots\r\n"
SECOND = b"From: b@example.net\r\nSubject: second\r\n\r\nline 1\r\nline 2\r\nline 3\r\n"
NO_FINAL_CRLF = b"Subject: cut\r\n\r\nno line end at the end"


@pytest.fixture(params=LOOPS)
def rig(request: pytest.FixtureRequest, sqlite_engine: Engine, tmp_path: Path) -> Iterator[Pop3Rig]:
    rig = Pop3Rig(sqlite_engine, tmp_path, request.param)
    yield rig
    rig.close()


def file_of(rig: Pop3Rig, uid: int) -> bytes:
    path = rig.store.message_path(rig.account.id, "INBOX", uid)
    assert path is not None
    return path.read_bytes()


def raw_session(server: Pop3Server, commands: bytes) -> tuple[socket.socket, BinaryIO]:
    """A raw connection, logged in as bob with `commands` pipelined after PASS; the
    greeting and the two login replies are read."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    stream = sock.makefile("rb")
    stream.readline()
    sock.sendall(b"USER bob@example.com\r\nPASS Correct-horse-42\r\n" + commands)
    assert stream.readline() == b"+OK Send your password\r\n"
    assert stream.readline().startswith(b"+OK Logged in")
    return sock, stream


def unstuffed(lines: list[bytes]) -> bytes:
    """poplib already removed the dot-stuffing; put the CRLFs back."""
    return b"".join(line + b"\r\n" for line in lines)


def test_stat_list_and_retr_match_the_maildir_files(rig: Pop3Rig) -> None:
    uids = rig.deliver(FIRST, SECOND)
    server = rig.start()
    client = rig.login(server)
    files = [file_of(rig, uid) for uid in uids]
    assert client.stat() == (2, sum(len(f) for f in files))
    _resp, listing, _ = client.list()
    assert listing == [f"{n} {len(f)}".encode() for n, f in enumerate(files, 1)]
    for number, data in enumerate(files, 1):
        resp, lines, _octets = client.retr(number)
        assert resp == f"+OK {len(data)} octets".encode()
        assert unstuffed(lines) == data
    assert client.quit().startswith(b"+OK")


def test_retr_sends_exact_wire_bytes(rig: Pop3Rig) -> None:
    """Raw socket: dot-stuffing on the wire and a CRLF added to an unterminated file."""
    uids = rig.deliver(FIRST, NO_FINAL_CRLF)
    server = rig.start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"+OK")
        sock.sendall(b"USER bob@example.com\r\nPASS Correct-horse-42\r\nRETR 1\r\nRETR 2\r\n")
        assert stream.readline() == b"+OK Send your password\r\n"
        assert stream.readline().startswith(b"+OK Logged in")
        first = file_of(rig, uids[0])
        assert stream.readline() == f"+OK {len(first)} octets\r\n".encode()
        expected = first.replace(b"\r\n.", b"\r\n..") + b".\r\n"
        assert stream.read(len(expected)) == expected
        second = file_of(rig, uids[1])
        assert not second.endswith(b"\r\n")
        assert stream.readline() == f"+OK {len(second)} octets\r\n".encode()
        expected = second + b"\r\n.\r\n"
        assert stream.read(len(expected)) == expected


@pytest.mark.parametrize("change", [b"appended line\r\n" * 3, b""])
def test_retr_sends_the_file_as_it_is_when_its_size_changed(rig: Pop3Rig, change: bytes) -> None:
    """The first read is sized by the index: a file grown since (another tool
    appended to it) is still sent whole, and a shrunk one as far as it goes."""
    (uid,) = rig.deliver(FIRST)
    path = rig.store.message_path(rig.account.id, "INBOX", uid)
    assert path is not None
    indexed = path.read_bytes()
    path.write_bytes(indexed + change if change else indexed[: len(indexed) // 2] + b"\r\n")
    sock, stream = raw_session(rig.start(), b"RETR 1\r\nNOOP\r\n")
    with sock:
        assert stream.readline() == f"+OK {len(indexed)} octets\r\n".encode()
        expected = path.read_bytes().replace(b"\r\n.", b"\r\n..") + b".\r\n"
        assert stream.read(len(expected)) == expected
        assert stream.readline() == b"+OK\r\n"  # still in step


def test_a_flood_of_pipelined_commands_is_answered_in_order(rig: Pop3Rig) -> None:
    """Thousands of NOOPs in one go are answered in slices (other connections get
    the loop between them), every reply in order, and the session goes on."""
    rig.deliver(FIRST)
    server = rig.start()
    count = 2000
    sock, stream = raw_session(server, b"NOOP\r\n" * count + b"STAT\r\n")
    with sock:
        assert [stream.readline() for _ in range(count)] == [b"+OK\r\n"] * count
        assert stream.readline().startswith(b"+OK 1 ")
        sock.sendall(b"QUIT\r\n")
        assert stream.readline().startswith(b"+OK")


def big_message() -> bytes:
    """~1 MB; a line starting with '.' begins exactly at the 1st and 2nd chunk boundary
    of the file, and a CRLF is split across the 3rd."""
    body = bytearray(b"Subject: big\r\n\r\n")

    def fill_to(offset: int) -> None:
        while offset - len(body) > 200:
            body.extend(b"x" * 98 + b"\r\n")
        body.extend(b"z" * (offset - len(body) - 2) + b"\r\n")

    fill_to(PIECE)
    body.extend(b".dot at the first boundary\r\n")
    fill_to(2 * PIECE)
    body.extend(b"..two dots at the second\r\n")
    fill_to(3 * PIECE + 1)  # the CR is the chunk's last byte, the LF the next one's first
    body.extend(b".last line\r\n")
    return bytes(body)


def test_large_message_with_dots_on_chunk_boundaries(rig: Pop3Rig) -> None:
    message = big_message()
    assert message[PIECE : PIECE + 1] == b"."
    assert message[3 * PIECE - 1 : 3 * PIECE + 1] == b"\r\n"
    (uid,) = rig.deliver(message)
    sock, stream = raw_session(rig.start(), b"RETR 1\r\n")
    with sock:
        data = file_of(rig, uid)
        assert stream.readline() == f"+OK {len(data)} octets\r\n".encode()
        expected = data.replace(b"\r\n.", b"\r\n..") + b".\r\n"
        assert stream.read(len(expected)) == expected


def test_top(rig: Pop3Rig) -> None:
    rig.deliver(SECOND)
    server = rig.start()
    client = rig.login(server)
    _resp, lines, _ = client.top(1, 0)
    assert lines == [b"From: b@example.net", b"Subject: second", b""]
    _resp, lines, _ = client.top(1, 2)
    assert lines[-2:] == [b"line 1", b"line 2"]
    with pytest.raises(poplib.error_proto, match=r"No such message 2"):
        client.top(2, 0)


def test_one_command_at_a_time_exact_bytes_with_dots_and_top_0(rig: Pop3Rig) -> None:
    """Each answer waited for, as poplib does (so RETR n reads n+1 ahead): the
    message read ahead goes out dot-stuffed exactly; TOP 0 and a RETR of the
    message read ahead for it are exact too."""
    dotted = b"Subject: dots\r\n\r\n.\r\n..\r\n.starts with a dot\r\nend.\r\n"
    uids = rig.deliver(SECOND, dotted, FIRST)
    sock, stream = raw_session(rig.start(), b"")
    with sock:
        for command, uid, top in ((b"RETR 1", 0, False), (b"RETR 2", 1, False),
                                  (b"TOP 3 0", 2, True), (b"RETR 3", 2, False)):
            sock.sendall(command + b"\r\n")
            data = file_of(rig, uids[uid])
            if top:
                assert stream.readline() == b"+OK Top of message follows\r\n"
                data = data[: data.index(b"\r\n\r\n") + 4]
            else:
                assert stream.readline() == f"+OK {len(data)} octets\r\n".encode()
            expected = data.replace(b"\r\n.", b"\r\n..") + b".\r\n"
            assert stream.read(len(expected)) == expected, command
        sock.sendall(b"NOOP\r\n")
        assert stream.readline() == b"+OK\r\n"


def test_uidl_is_the_maildir_unique_name_and_survives_restart_and_dbsync(
    rig: Pop3Rig,
) -> None:
    uids = rig.deliver(FIRST, SECOND)
    server = rig.start()
    client = rig.login(server)
    _resp, listing, _ = client.uidl()
    client.quit()
    uidls = [line.split()[1].decode() for line in listing]
    for uid, uidl in zip(uids, uidls, strict=True):
        path = rig.store.message_path(rig.account.id, "INBOX", uid)
        assert path is not None and path.name.split(",")[0] == uidl
    # Restart: a new server and a new MailStore on the same data.
    rig.stop(server)
    store = MailStore(rig.engine, rig.mail_dir, "mail.example.com")
    try:
        server = rig.start(store=store)
        client = rig.login(server)
        assert client.uidl()[1] == listing
        client.quit()
        # Rebuild the index from the files (nmail dbsync).
        store.dbsync([rig.account])
        client = rig.login(server)
        assert client.uidl()[1] == listing
        assert client.uidl(2) == b"+OK 2 " + uidls[1].encode()
        client.quit()
    finally:
        rig.stop(server)
        store.close()


def test_dele_rset_keeps_everything(rig: Pop3Rig) -> None:
    rig.deliver(FIRST, SECOND)
    server = rig.start()
    client = rig.login(server)
    client.dele(1)
    with pytest.raises(poplib.error_proto, match="message 1 already deleted"):
        client.retr(1)
    assert client.stat()[0] == 1
    client.rset()
    assert client.stat()[0] == 2
    client.quit()
    assert len(rig.store.refs(rig.account.id, "INBOX")) == 2


def test_dele_quit_deletes_and_the_index_agrees(rig: Pop3Rig) -> None:
    uids = rig.deliver(FIRST, SECOND, NO_FINAL_CRLF)
    path = rig.store.message_path(rig.account.id, "INBOX", uids[1])
    assert path is not None
    server = rig.start()
    client = rig.login(server)
    client.retr(1)
    client.dele(2)
    assert client.quit() == b"+OK nmail POP3 server signing off (2 messages left)"
    refs = rig.store.refs(rig.account.id, "INBOX")
    assert [r.uid for r in refs] == [uids[0], uids[2]]
    assert not path.exists()
    # RETR'd messages are marked seen for the webmail, like Dovecot does.
    assert "\\Seen" in refs[0].flags
    assert "\\Seen" not in refs[1].flags


def test_dropped_connection_deletes_nothing(rig: Pop3Rig) -> None:
    rig.deliver(FIRST, SECOND)
    server = rig.start()
    client = rig.login(server)
    client.dele(1)
    client.dele(2)
    client.close()  # no QUIT
    wait_until(lambda: server.connection_count == 0)
    assert len(rig.store.refs(rig.account.id, "INBOX")) == 2
    # The lock went with the connection.
    client = rig.login(server)
    assert client.stat()[0] == 2


def test_second_session_gets_in_use(rig: Pop3Rig) -> None:
    rig.deliver(FIRST)
    server = rig.start()
    first = rig.login(server)
    second = rig.connect(server)
    second.user("bob@example.com")
    with pytest.raises(poplib.error_proto) as refused:
        second.pass_("Correct-horse-42")
    assert refused.value.args[0] == b"-ERR [IN-USE] Mailbox is locked by another POP3 session"
    first.quit()
    second.user("bob@example.com")
    assert second.pass_("Correct-horse-42").startswith(b"+OK")


def test_lock_held_by_another_process_gives_in_use(rig: Pop3Rig) -> None:
    server = rig.start()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX);"
         " print('locked', flush=True); sys.stdin.read()",
         str(rig.maildir / "nmail-pop3.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        client = rig.connect(server)
        client.user("bob@example.com")
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            client.pass_("Correct-horse-42")
    finally:
        holder.communicate(b"", timeout=10)
    client.user("bob@example.com")
    assert client.pass_("Correct-horse-42").startswith(b"+OK")


def test_message_expunged_by_webmail_meanwhile(rig: Pop3Rig) -> None:
    uids = rig.deliver(FIRST, SECOND)
    server = rig.start()
    client = rig.login(server)
    rig.store.expunge(rig.account.id, "INBOX", [uids[0]])  # the webmail deletes it
    with pytest.raises(poplib.error_proto, match="message 1 no longer exists"):
        client.retr(1)
    _resp, lines, _ = client.retr(2)
    assert unstuffed(lines) == file_of(rig, uids[1])
    client.dele(1)
    assert client.quit().startswith(b"+OK")
    assert [r.uid for r in rig.store.refs(rig.account.id, "INBOX")] == [uids[1]]


def test_a_message_read_ahead_and_then_expunged_or_flagged(rig: Pop3Rig) -> None:
    """RETR 1 reads message 2 ahead: expunged by the webmail meanwhile, RETR 2 is
    still refused; flagged (its file renamed), RETR 2 still sends it."""
    third = b"Subject: third\r\n\r\nthree\r\n"
    uids = rig.deliver(FIRST, SECOND, third, FIRST)
    server = rig.start()
    client = rig.login(server)
    client.retr(1)
    rig.store.expunge(rig.account.id, "INBOX", [uids[1]])
    with pytest.raises(poplib.error_proto, match="message 2 no longer exists"):
        client.retr(2)
    client.retr(3)
    rig.store.set_flags(rig.account.id, "INBOX", [uids[3]], add=frozenset({"\\Seen"}))
    rig.store.names_settled()
    _resp, lines, _ = client.retr(4)
    assert unstuffed(lines) == file_of(rig, uids[3])
    assert client.quit().startswith(b"+OK")


def test_bad_input_over_the_wire(rig: Pop3Rig) -> None:
    rig.deliver(FIRST)
    server = rig.start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(b"X" * 5000 + b"\r\nFOO\r\nRETR 1\r\nUSER bob@example.com\r\n")
        assert stream.readline() == b"-ERR Line too long\r\n"
        assert stream.readline() == b"-ERR Unknown command FOO\r\n"
        assert stream.readline() == b"-ERR RETR is not allowed before login\r\n"
        assert stream.readline() == b"+OK Send your password\r\n"
        sock.sendall(b"PASS Correct-horse-42\r\nRETR 0\r\nRETR 99999999999999999999\r\n")
        assert stream.readline().startswith(b"+OK Logged in")
        assert stream.readline() == b"-ERR No such message 0\r\n"
        assert stream.readline() == b"-ERR No such message\r\n"
        # Five errors so far; the tenth closes the connection.
        sock.sendall(b"NOPE\r\n" * 10)
        replies = [stream.readline() for _ in range(5)]
        assert replies[:4] == [b"-ERR Unknown command NOPE\r\n"] * 4
        assert replies[4] == b"-ERR Too many bad commands, closing connection\r\n"
        assert stream.readline() == b""  # closed
    wait_until(lambda: server.connection_count == 0)
    assert len(rig.store.refs(rig.account.id, "INBOX")) == 1


def test_stop_closes_idle_sessions_without_deleting(rig: Pop3Rig) -> None:
    rig.deliver(FIRST)
    server: Pop3Server = rig.start()
    client = rig.login(server)
    client.dele(1)
    rig.stop(server)
    assert server.connection_count == 0
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        client.quit()
    assert len(rig.store.refs(rig.account.id, "INBOX")) == 1


def test_idle_session_is_closed_without_update(rig: Pop3Rig) -> None:
    rig.deliver(FIRST)
    server = rig.start(Pop3Settings(idle_timeout=0.2))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(b"USER bob@example.com\r\nPASS Correct-horse-42\r\nDELE 1\r\n")
        assert stream.readline().startswith(b"+OK")
        assert stream.readline().startswith(b"+OK Logged in")
        assert stream.readline() == b"+OK message 1 deleted\r\n"
        assert stream.readline() == b""  # the server hung up on the silent client
    wait_until(lambda: server.connection_count == 0)
    assert len(rig.store.refs(rig.account.id, "INBOX")) == 1


@pytest.mark.parametrize("command", [b"NOOP", b"STAT", b"LIST", b"UIDL 1", b"RSET"])
def test_commands_answered_in_the_session_keep_it_alive(rig: Pop3Rig, command: bytes) -> None:
    """RFC 1939 section 3: any command resets the autologout timer, those the
    session answers by itself (no event for the server) included.

    The server's idleness is measured on a clock the test moves: a stalled
    test process cannot make a pause look longer than it is."""
    rig.deliver(FIRST)
    timeout = 600.0
    timers = ManualTimers(rig.loop.loop)
    server = rig.start(Pop3Settings(idle_timeout=timeout), timers=timers)
    sock, stream = raw_session(server, b"")
    with sock, stream:
        # A command every half timeout, for four timeouts: quiet, yet never a
        # timeout long. Each advance has run the server's idle checks then due.
        for answered in range(8):
            timers.advance(timeout / 2)
            sock.sendall(command + b"\r\n")
            line = stream.readline()
            assert line.startswith(b"+OK"), (answered, line)
            if command == b"LIST":
                while stream.readline() != b".\r\n":
                    pass
        # The same clock still ends a session that falls silent for a timeout.
        timers.advance(timeout)
        assert stream.readline() == b""
    wait_until(lambda: server.connection_count == 0)
    assert len(rig.store.refs(rig.account.id, "INBOX")) == 1


def test_idle_after_commands_answered_in_the_session_is_still_closed(rig: Pop3Rig) -> None:
    rig.deliver(FIRST)
    server = rig.start(Pop3Settings(idle_timeout=0.2))
    sock, stream = raw_session(server, b"NOOP\r\nSTAT\r\nDELE 1\r\n")
    with sock, stream:
        assert stream.readline() == b"+OK\r\n"
        assert stream.readline().startswith(b"+OK 1 ")
        assert stream.readline() == b"+OK message 1 deleted\r\n"
        assert stream.readline() == b""  # the server hung up on the silent client
    wait_until(lambda: server.connection_count == 0)
    assert len(rig.store.refs(rig.account.id, "INBOX")) == 1  # no UPDATE


@pytest.mark.parametrize("logged_in", [False, True])
def test_a_trickle_of_bytes_does_not_keep_a_session_alive(rig: Pop3Rig, logged_in: bool) -> None:
    """Issue 9 item 7: a byte now and then is not activity; whole commands are."""
    server = rig.start(Pop3Settings(idle_timeout=1.0))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.recv(512)
        if logged_in:
            # Answered NOOPs, then a command that never ends (NOOP's answer
            # resets idleness; a byte of an unfinished line does not).
            stream = sock.makefile("rb")
            sock.sendall(b"USER bob@example.com\r\nPASS Correct-horse-42\r\nNOOP\r\n")
            for _ in range(3):
                assert stream.readline().startswith(b"+OK")
            stream.close()
        sock.settimeout(0.1)
        closed = False
        for _ in range(300):  # a byte every 0.1 s would last 30 s
            try:
                sock.sendall(b"N")
                if sock.recv(512) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed
    wait_until(lambda: server.connection_count == 0)


def test_a_busy_session_ends_at_its_time_limit_without_update(rig: Pop3Rig) -> None:
    """Issue 9 item 7: NOOPs cannot keep a login (and the maildrop lock) for ever."""
    rig.deliver(FIRST)
    server = rig.start(Pop3Settings(idle_timeout=600.0, max_session_time=1.0))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(b"USER bob@example.com\r\nPASS Correct-horse-42\r\nDELE 1\r\n")
        for _ in range(3):
            assert stream.readline().startswith(b"+OK")
        closed = False
        for _ in range(300):  # a NOOP every 0.1 s would last 30 s
            try:
                sock.sendall(b"NOOP\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            try:
                line = stream.readline()
            except ConnectionResetError:
                line = b""
            if line == b"":
                closed = True
                break
            assert line.startswith(b"+OK")
            silent_for(sock, 0.1)  # a busy client's pause; over if the server hangs up
        assert closed, "a busy session outlived its time limit"
    wait_until(lambda: server.connection_count == 0)
    assert len(rig.store.refs(rig.account.id, "INBOX")) == 1  # no UPDATE: DELE undone


def test_message_flagged_by_webmail_meanwhile_is_still_found(rig: Pop3Rig) -> None:
    uids = rig.deliver(FIRST, SECOND)
    server = rig.start()
    client = rig.login(server)
    before = rig.store.message_path(rig.account.id, "INBOX", uids[0])
    # The webmail reads it: the file moves to cur/ with the S flag.
    rig.store.set_flags(rig.account.id, "INBOX", [uids[0]], add=frozenset({"\\Seen"}))
    rig.store.names_settled()  # the file name follows the index just after the answer
    after = rig.store.message_path(rig.account.id, "INBOX", uids[0])
    assert before != after
    _resp, lines, _ = client.retr(1)
    assert unstuffed(lines) == file_of(rig, uids[0])
    client.quit()


def test_session_on_every_database(engine: Engine, tmp_path: Path) -> None:
    """The whole cycle on SQLite, PostgreSQL and MariaDB (those that answer)."""
    rig = Pop3Rig(engine, tmp_path)
    try:
        uids = rig.deliver(FIRST, SECOND)
        server = rig.start()
        client = rig.login(server)
        _resp, listing, _ = client.uidl()
        assert len(listing) == 2
        _resp, lines, _ = client.retr(2)
        assert unstuffed(lines) == file_of(rig, uids[1])
        client.dele(1)
        client.quit()
        refs = rig.store.refs(rig.account.id, "INBOX")
        assert [r.uid for r in refs] == [uids[1]]
        assert "\\Seen" in refs[0].flags
    finally:
        rig.close()


def test_past_the_connection_limit_a_client_gets_err_and_is_closed(rig: Pop3Rig) -> None:
    server = rig.start(Pop3Settings(max_connections=2))
    first, second = rig.connect(server), rig.connect(server)
    wait_until(lambda: server.connection_count == 2)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:
        data = b""
        while chunk := extra.recv(4096):
            data += chunk
    assert data == b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
    assert server.connection_count == 2
    first.quit()
    wait_until(lambda: server.connection_count == 1)
    third = rig.connect(server)  # room again
    assert third.getwelcome().startswith(b"+OK")
    second.quit()
    third.quit()
