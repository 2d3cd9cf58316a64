"""The POP3 state machine without sockets: the maildrop commands and bad input."""

from __future__ import annotations

import pytest

from nmail.protocols.pop3 import (
    Authenticate,
    Close,
    MaildropEntry,
    Pop3Session,
    Retrieve,
    Revocation,
    State,
    Update,
)
from pop3_driver import ENTRIES, MESSAGES, Client


def test_stat_list_uidl() -> None:
    c = Client()
    c.login()
    sizes = [len(m) for m in MESSAGES.values()]
    assert c.cmd("STAT") == f"+OK 3 {sum(sizes)}\r\n".encode()
    listing = c.cmd("LIST").decode()
    assert listing == (
        f"+OK 3 messages ({sum(sizes)} octets)\r\n"
        f"1 {sizes[0]}\r\n2 {sizes[1]}\r\n3 {sizes[2]}\r\n.\r\n"
    )
    assert c.cmd("LIST 2") == f"+OK 2 {sizes[1]}\r\n".encode()
    assert c.cmd("UIDL") == (
        b"+OK Unique-ID listing follows\r\n1 uidl-1\r\n2 uidl-2\r\n3 uidl-3\r\n.\r\n"
    )
    assert c.cmd("uidl 3") == b"+OK 3 uidl-3\r\n"  # keywords are case-insensitive


def test_retr_dot_stuffs_and_terminates() -> None:
    c = Client()
    c.login()
    assert c.cmd("RETR 2") == (
        f"+OK {len(MESSAGES[2])} octets\r\n".encode()
        + b"Subject: two\r\nX: y\r\n\r\n..hidden dot\r\nline 2\r\nline 3\r\n.\r\n"
    )


@pytest.mark.parametrize("content", [
    b"Subject: two\r\n\r\n.hidden dot\r\nlast\r\n",
    b".leading\r\nno final line end",
    b"ends in a bare CR\r",
    b"",
])
def test_whole_message_pieces_equal_the_chunked_path(content: bytes) -> None:
    """message_whole (the server's one-read RETR) in output_pieces() for a vectored
    write: joined, exactly what message_begin/data/end send."""
    wanted = Client()
    wanted.login()
    got = Client()
    got.login()
    for c, whole in ((wanted, False), (got, True)):
        c.session.receive_data(b"RETR 1\r\n")
        assert isinstance(c.session.next_event(), Retrieve)
        if whole:
            c.session.message_whole(content)
        else:
            c.session.message_begin()
            c.session.message_data(content)
            c.session.message_end()
    pieces = got.session.output_pieces()
    assert len(pieces) > 1 and got.session.pending_output == 0
    assert b"".join(pieces) == wanted.session.data_to_send()
    assert got.session.output_pieces() == []


def test_top_sends_headers_and_n_lines() -> None:
    c = Client()
    c.login()
    assert c.cmd("TOP 2 0") == b"+OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\n.\r\n"
    assert c.cmd("TOP 2 1") == (
        b"+OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\n..hidden dot\r\n.\r\n"
    )
    # More lines than the body has: the whole message.
    assert c.cmd("TOP 2 99").endswith(b"line 3\r\n.\r\n")


def test_top_bad_arguments() -> None:
    c = Client()
    c.login()
    assert c.cmd("TOP 1").startswith(b"-ERR Syntax: TOP")
    assert c.cmd("TOP 1 x").startswith(b"-ERR Invalid line count")
    assert c.cmd("TOP 1 -1").startswith(b"-ERR Invalid line count")
    assert c.cmd("TOP 9 1") == b"-ERR No such message 9\r\n"


def test_dele_hides_message_and_rset_restores() -> None:
    c = Client()
    c.login()
    size3 = len(MESSAGES[3])
    total = sum(len(m) for m in MESSAGES.values())
    assert c.cmd("DELE 3") == b"+OK message 3 deleted\r\n"
    assert c.cmd("STAT") == f"+OK 2 {total - size3}\r\n".encode()
    assert b"\r\n3 " not in c.cmd("LIST")
    assert b"uidl-3" not in c.cmd("UIDL")
    for command in ("RETR 3", "LIST 3", "UIDL 3", "TOP 3 0", "DELE 3"):
        assert c.cmd(command) == b"-ERR message 3 already deleted\r\n"
    assert c.cmd("RSET") == f"+OK maildrop has 3 messages ({total} octets)\r\n".encode()
    assert c.cmd("LIST 3") == f"+OK 3 {size3}\r\n".encode()


def test_quit_in_transaction_enters_update_with_deletions() -> None:
    c = Client()
    c.login()
    c.cmd("DELE 1")
    c.cmd("DELE 3")
    reply = c.cmd("QUIT")
    assert reply == b"+OK nmail POP3 server signing off (1 messages left)\r\n"
    updates = [e for e in c.events if isinstance(e, Update)]
    assert updates == [Update((ENTRIES[0], ENTRIES[2]))]
    assert c.session.state is State.CLOSED
    assert isinstance(c.session.next_event(), Close)


def test_update_failure_reports_sys_temp() -> None:
    s = Pop3Session(plaintext_allowed=True)
    s.receive_data(b"USER a@b.c\r\nPASS x\r\n")
    assert isinstance(s.next_event(), Authenticate)
    s.login_accepted(ENTRIES)
    s.receive_data(b"DELE 1\r\nQUIT\r\n")
    event = s.next_event()
    assert isinstance(event, Update)
    assert s.state is State.UPDATE
    s.update_finished(False)
    assert s.data_to_send().endswith(b"-ERR [SYS/TEMP] Some deleted messages were not removed\r\n")


def logged_in_with_a_deletion() -> Pop3Session:
    s = Pop3Session(plaintext_allowed=True)
    s.receive_data(b"USER a@b.c\r\nPASS x\r\n")
    assert isinstance(s.next_event(), Authenticate)
    s.login_accepted(ENTRIES)
    s.receive_data(b"DELE 1\r\n")
    assert s.next_event() is None
    s.data_to_send()
    return s


def test_a_revoked_login_closes_without_update() -> None:
    s = logged_in_with_a_deletion()
    s.receive_data(b"QUIT\r\n")  # buffered, never run
    s.login_revoked(Revocation.DELETED)
    assert s.data_to_send() == b"-ERR [AUTH] This account was deleted, closing\r\n"
    assert s.state is State.CLOSED
    assert isinstance(s.next_event(), Close)  # no Update: the DELE is never committed


def test_a_login_revoked_at_update_commits_nothing() -> None:
    s = logged_in_with_a_deletion()
    s.receive_data(b"QUIT\r\n")
    assert isinstance(s.next_event(), Update)
    s.login_revoked(Revocation.LOGIN_DISABLED)  # instead of update_finished()
    assert s.data_to_send() == b"-ERR [AUTH] Logins to this account were disabled, closing\r\n"
    assert isinstance(s.next_event(), Close)


def test_login_revoked_needs_a_login() -> None:
    with pytest.raises(RuntimeError):
        Pop3Session().login_revoked(Revocation.REPLACED)


def test_quit_in_authorization_closes_without_update() -> None:
    c = Client()
    assert c.cmd("QUIT") == b"+OK nmail POP3 server signing off\r\n"
    assert c.events == [Close()]
    assert c.session.state is State.CLOSED
    # Nothing more is read.
    c.session.receive_data(b"USER x\r\n")
    assert isinstance(c.session.next_event(), Close)
    assert c.session.data_to_send() == b""


def test_noop() -> None:
    c = Client()
    c.login()
    assert c.cmd("NOOP") == b"+OK\r\n"
    assert c.cmd("NOOP x") == b"-ERR NOOP takes no arguments\r\n"


@pytest.mark.parametrize(
    ("argument", "reply"),
    [
        ("0", b"-ERR No such message 0\r\n"),
        ("4", b"-ERR No such message 4\r\n"),
        ("abc", b"-ERR Invalid message number 'abc'\r\n"),
        ("-1", b"-ERR Invalid message number '-1'\r\n"),
        ("1.0", b"-ERR Invalid message number '1.0'\r\n"),
        ("\u0661", b"-ERR Invalid message number '\xd9\xa1'\r\n"),  # Arabic-Indic one
        ("9" * 200, b"-ERR No such message\r\n"),
        ("00000000001", b"-ERR No such message\r\n"),
    ],
)
def test_bad_message_numbers(argument: str, reply: bytes) -> None:
    c = Client()
    c.login()
    for verb in ("RETR", "DELE", "LIST", "UIDL"):
        assert c.cmd(f"{verb} {argument}") == reply
    assert c.session.state is State.TRANSACTION


def test_message_number_argument_count() -> None:
    c = Client()
    c.login()
    assert c.cmd("RETR") == b"-ERR Syntax: RETR message-number\r\n"
    assert c.cmd("DELE 1 2") == b"-ERR Syntax: DELE message-number\r\n"
    assert c.cmd("STAT 1") == b"-ERR STAT takes no arguments\r\n"


def test_commands_in_the_wrong_state() -> None:
    c = Client(tls_available=True, max_errors=100)
    for verb in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 1", "RSET", "NOOP"):
        name = verb.split()[0]
        assert c.cmd(verb) == f"-ERR {name} is not allowed before login\r\n".encode()
    c.login()
    for verb in ("USER x", "PASS y", "AUTH PLAIN", "STLS"):
        name = verb.split()[0]
        assert c.cmd(verb) == f"-ERR {name} is not allowed after login\r\n".encode()
    assert c.session.state is State.TRANSACTION


def test_unknown_commands() -> None:
    c = Client()
    assert c.cmd("HELO x") == b"-ERR Unknown command HELO\r\n"
    assert c.cmd("APOP bob 0123456789abcdef") == b"-ERR Unknown command APOP\r\n"
    assert c.cmd("\x1b[2J") == b"-ERR Unknown command\r\n"
    assert c.cmd("") == b"-ERR Unknown command\r\n"
    assert c.send(b"\xff\xfe\r\n") == b"-ERR Command is not valid UTF-8\r\n"
    # Keywords are ASCII: what only Unicode case mapping turns into one is unknown.
    for verb in ("\u017ftls", "qu\u0131t", "\ufb06at", "AUTH pla\u0131n"):
        assert c.cmd(verb) in (b"-ERR Unknown command\r\n",
                               b"-ERR Unsupported authentication mechanism\r\n"), verb
    assert c.session.state is State.AUTHORIZATION


def test_too_many_errors_close_the_connection() -> None:
    c = Client()
    replies = c.send(b"BAD\r\n" * 9 + b"QUIT\r\n")
    assert replies.count(b"-ERR Unknown command BAD\r\n") == 9
    assert replies.endswith(b"+OK nmail POP3 server signing off\r\n")
    c = Client()
    replies = c.send(b"BAD\r\n" * 10 + b"QUIT\r\n")
    assert replies.endswith(b"-ERR Too many bad commands, closing connection\r\n")
    assert b"signing off" not in replies
    assert c.events == [Close()]
    assert isinstance(c.session.next_event(), Close)


def test_overlong_line_is_refused_and_its_rest_discarded() -> None:
    c = Client()
    # 255 octets with CRLF is the limit: accepted.
    line = b"USER " + b"a" * 248 + b"\r\n"
    assert len(line) == 255
    assert c.send(line) == b"+OK Send your password\r\n"
    # One more octet: refused, and the tail is not read as a command.
    long_line = b"USER " + b"a" * 249 + b"STAT\r\n"
    assert c.send(long_line) == b"-ERR Line too long\r\n"
    # The rest of an overlong line arriving in pieces is skipped too.
    assert c.send(b"X" * 300) == b"-ERR Line too long\r\n"
    assert c.send(b"Y" * 300) == b""
    assert c.send(b"QUIT\r\nNOOP\r\n") == b"-ERR NOOP is not allowed before login\r\n"


def test_bare_lf_and_split_lines_are_accepted() -> None:
    c = Client()
    assert c.send(b"US") == b""
    assert c.send(b"ER bob@example.com\n") == b"+OK Send your password\r\n"


def test_pipelined_commands_are_answered_in_order() -> None:
    c = Client()
    out = c.send(b"USER a@b.c\r\nPASS x\r\nSTAT\r\nDELE 1\r\nLIST 1\r\nRETR 3\r\nQUIT\r\n")
    lines = out.split(b"\r\n")
    assert lines[0] == b"+OK Send your password"
    assert lines[1].startswith(b"+OK Logged in")
    assert lines[2].startswith(b"+OK 3 ")
    assert lines[3] == b"+OK message 1 deleted"
    assert lines[4] == b"-ERR message 1 already deleted"
    assert lines[5].startswith(b"+OK ") and lines[5].endswith(b" octets")
    assert out.endswith(b"third\r\n.\r\n+OK nmail POP3 server signing off (2 messages left)\r\n")


def test_message_missing_gives_err_and_session_goes_on() -> None:
    s = Pop3Session(plaintext_allowed=True)
    s.receive_data(b"USER a@b.c\r\nPASS x\r\nRETR 2\r\nSTAT\r\n")
    assert isinstance(s.next_event(), Authenticate)
    s.login_accepted(ENTRIES)
    event = s.next_event()
    assert isinstance(event, Retrieve) and event.number == 2 and event.lines is None
    s.message_missing()
    assert s.next_event() is None
    out = s.data_to_send()
    assert b"-ERR message 2 no longer exists\r\n+OK 3 " in out


def test_unsafe_uidls_are_replaced_by_a_stable_hash() -> None:
    entries = [MaildropEntry(1, 10, "x" * 80), MaildropEntry(2, 10, "has space")]
    replies = []
    for _ in range(2):
        s = Pop3Session(plaintext_allowed=True)
        s.receive_data(b"USER a@b.c\r\nPASS x\r\nUIDL\r\n")
        assert isinstance(s.next_event(), Authenticate)
        s.login_accepted(entries)
        assert s.next_event() is None
        replies.append(s.data_to_send())
    assert replies[0] == replies[1]
    listing = replies[0].split(b"+OK Unique-ID listing follows\r\n")[1]
    uidls = listing.split(b"\r\n")[:2]
    assert uidls[0].startswith(b"1 ") and uidls[1].startswith(b"2 ")
    for line in uidls:
        uidl = line.split(b" ", 1)[1]
        assert 1 <= len(uidl) <= 70 and b" " not in uidl


def run_retrieve(command: bytes, whole: bool) -> bytes:
    s = Pop3Session(plaintext_allowed=True)
    s.receive_data(b"USER a@b.c\r\nPASS x\r\n" + command + b"QUIT\r\n")
    assert isinstance(s.next_event(), Authenticate)
    s.login_accepted(ENTRIES)
    while True:
        event = s.next_event()
        if isinstance(event, Retrieve):
            data = MESSAGES[event.entry.uid]
            if whole:
                s.message_whole(data)
            else:
                s.message_begin()
                s.message_data(data)
                s.message_end()
        elif isinstance(event, Update):
            s.update_finished(True)
        else:
            break
    return s.data_to_send()


@pytest.mark.parametrize("command", [b"RETR 2\r\n", b"TOP 2 1\r\n", b"RETR 2\r\nTOP 1 0\r\n"])
def test_message_whole_is_begin_data_end_in_one(command: bytes) -> None:
    assert run_retrieve(command, whole=True) == run_retrieve(command, whole=False)


def test_update_lists_retrieved_messages_not_deleted() -> None:
    c = Client()
    c.login()
    c.cmd("RETR 1")
    c.cmd("RETR 2")
    c.cmd("TOP 3 0")  # TOP is not a download
    c.cmd("DELE 2")
    c.cmd("QUIT")
    updates = [e for e in c.events if isinstance(e, Update)]
    assert updates == [Update((ENTRIES[1],), (ENTRIES[0],))]


def test_a_long_pipeline_is_handled_in_slices() -> None:
    """next_event() handles at most MAX_AT_ONCE commands per call, saying there is
    more; called again, it goes on where it stopped, replies in order."""
    from nmail.protocols.pop3.session import MAX_AT_ONCE

    c = Client()
    c.login()
    count = MAX_AT_ONCE * 3 + 5
    c.session.receive_data(b"NOOP\r\n" * count + b"STAT\r\n")
    calls = 0
    while True:
        calls += 1
        assert c.session.next_event() is None
        if not c.session.more_buffered:
            break
    assert calls == 4
    out = c.session.data_to_send()
    assert out.startswith(b"+OK\r\n" * count + b"+OK 3 ")
    assert c.cmd("NOOP") == b"+OK\r\n"
    assert not c.session.more_buffered
