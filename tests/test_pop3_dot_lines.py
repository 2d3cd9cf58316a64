"""Dot-stuffing known at delivery (messages.dot_lines): RETR skips the scan only when
the row says no line starts with "." and the file is the size the row says.

Each hostile body is sent exactly as a line-by-line reference stuffs it, whether
the row knows (delivered here), does not (NULL: a row from before, a file from
another tool) or is wrong about a file another tool replaced since.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from nmail.db.tables import messages
from nmail.mailstore.indexrow import SUMMARY_KEYS, has_dot_line, index_values
from nmail.mailstore.store import NewMessage
from nmail.protocols.smtp.data import DataReader
from pop3_rig import Pop3Rig
from server_rig import RunningServer, make_data_dir
from test_pop3_server import raw_session

HEAD = b"From: a@example.net\r\nSubject: dots\r\n\r\n"
HOSTILE = [
    HEAD + b".\r\n",  # a body of one lone dot: the terminator, if not stuffed
    HEAD + b"..\r\n",
    HEAD + b"text\r\n.\r\nmore\r\n.",  # a dot line inside, a lone dot without CRLF at the end
    HEAD + b"a\r\n..\r\n...\r\n.x\r\n",
    b".first line is a dot line\r\n\r\nbody\r\n",
    HEAD + b"bare\n.LF dot\n.\nend\n",  # bare LF line ends
    HEAD + b"cr only\r.not a line start\r.\r",  # CR without LF: no line starts
    HEAD + b"ends without CRLF",
    HEAD + b"ends with a bare CR\r",
    HEAD + b"no dot at all\r\nsecond line\r\n",
    b"",
]


def reference(data: bytes) -> bytes:
    """RETR's body and terminator by the RFC, one line at a time (LF ends a line)."""
    lines = data.split(b"\n")
    out = b"\n".join(b"." + line if line[:1] == b"." else line for line in lines)
    if out and not out.endswith(b"\n"):
        out += b"\n" if out.endswith(b"\r") else b"\r\n"
    return out + b".\r\n"


def retr_all(rig: Pop3Rig, expected: list[bytes]) -> list[bytes]:
    """What follows each RETR's +OK line, as long as its expected answer, pipelined on
    one connection (a NOOP after: still in step)."""
    commands = b"".join(b"RETR %d\r\n" % n for n in range(1, len(expected) + 1))
    sock, stream = raw_session(rig.start(), commands + b"NOOP\r\n")
    got = []
    with sock:
        for answer in expected:
            assert stream.readline().startswith(b"+OK")
            got.append(stream.read(len(answer)))
        assert stream.readline() == b"+OK\r\n"
    return got


def flags_of(engine: Engine) -> list[bool | None]:
    with engine.connect() as conn:
        rows = conn.execute(select(messages.c.dot_lines).order_by(messages.c.uid)).all()
    return [None if r[0] is None else bool(r[0]) for r in rows]


@pytest.fixture
def rig(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Pop3Rig]:
    rig = Pop3Rig(sqlite_engine, tmp_path, "uvloop")
    yield rig
    rig.close()


def test_has_dot_line() -> None:
    assert [has_dot_line(m) for m in HOSTILE] == [
        True, True, True, True, True, True, False, False, False, False, False]


@pytest.mark.parametrize("message", [
    HEAD + b"ascii\r\n", "Subject: 한글\r\nFrom: 김 <k@example.kr>\r\n\r\n본문\r\n".encode()])
@pytest.mark.parametrize("dots", [False, True])
def test_every_row_shape_carries_the_flag_last(message: bytes, dots: bool) -> None:
    """The ASCII quick row and the mended one alike (a row one short fails every insert)."""
    values = index_values(message, 1_700_000_000, dots)
    assert len(values) == len(SUMMARY_KEYS) and SUMMARY_KEYS[-1] == "dot_lines"
    assert values[-1] is dots


def test_hostile_bodies_are_stuffed_as_the_reference_with_the_flag_known(rig: Pop3Rig) -> None:
    rig.deliver(*HOSTILE)
    want = [reference(m) for m in HOSTILE]
    assert flags_of(rig.engine) == [has_dot_line(m) for m in HOSTILE]
    assert retr_all(rig, want) == want


def test_rows_that_do_not_know_are_stuffed(rig: Pop3Rig) -> None:
    """NULL: rows from before the column (or written by anything that did not say)."""
    rig.deliver(*HOSTILE)
    with rig.engine.begin() as conn:
        conn.execute(update(messages).values(dot_lines=None))
    want = [reference(m) for m in HOSTILE]
    assert retr_all(rig, want) == want


def test_a_file_replaced_by_another_tool_is_stuffed_whatever_its_row_says(rig: Pop3Rig) -> None:
    clean = HEAD + b"no dot at all\r\n"
    (uid,) = rig.deliver(clean)
    assert flags_of(rig.engine) == [False]
    path = rig.store.message_path(rig.account.id, "INBOX", uid)
    assert path is not None
    replaced = HEAD + b".\r\n"  # shorter than the row's size: the row is not this file
    path.write_bytes(replaced)
    assert retr_all(rig, [reference(replaced)]) == [reference(replaced)]


def test_a_file_delivered_by_another_tool_is_indexed_with_its_flag(rig: Pop3Rig) -> None:
    """A foreign file (bare LF, converted when indexed) in new/: dbsync looks at its lines."""
    rig.deliver(HEAD + b"ours\r\n")
    foreign = b"Subject: procmail\n\nhi\n.\n..x\n"
    (rig.maildir / "new" / "1700000000.M1P1.otherhost").write_bytes(foreign)
    rig.store.dbsync([rig.account])
    assert flags_of(rig.engine) == [False, True]
    crlf = foreign.replace(b"\n", b"\r\n")
    want = [reference(HEAD + b"ours\r\n"), reference(crlf)]
    assert retr_all(rig, want) == want


def test_the_store_takes_the_door_s_word_and_still_looks_at_the_trace_headers(
    rig: Pop3Rig,
) -> None:
    """dot_lines given (SMTP's DATA knows) is not checked again; the prefix always is."""
    said_false = NewMessage(rig.account, "INBOX", b"", HEAD + b".\r\n", dot_lines=False)
    said_true = NewMessage(rig.account, "INBOX", b"", HEAD + b"x\r\n", dot_lines=True)
    dotted_prefix = NewMessage(rig.account, "INBOX", b"X-Odd: a\r\n.b\r\n", HEAD,
                               dot_lines=False)
    rig.store.store([said_false, said_true, dotted_prefix])
    assert flags_of(rig.engine) == [False, True, True]


def read_data(chunks: list[bytes]) -> tuple[object, bool | None]:
    reader = DataReader(10 << 20)
    buf = bytearray()
    result: object = None
    for chunk in chunks:
        buf += chunk
        result = reader.scan(buf)
        if result is not None:
            break
    assert result is not None
    return result, reader.dot_lines


@pytest.mark.parametrize(("wire", "content", "dots"), [
    (b"Subject: x\r\n\r\nplain\r\n.\r\n", b"Subject: x\r\n\r\nplain\r\n", False),
    (b"Subject: x\r\n\r\n..\r\n.\r\n", b"Subject: x\r\n\r\n.\r\n", True),
    (b"..first\r\n.\r\n", b".first\r\n", True),
    (b".\r\n", b"", False),
    # A client that did not stuff: nothing starts with a dot after unstuffing,
    # yet the reader says "may" (it does not look twice).
    (b"Subject: x\r\n\r\n.y\r\n.\r\n", b"Subject: x\r\n\r\ny\r\n", True),
])
def test_smtp_data_says_whether_a_line_may_start_with_a_dot(
    wire: bytes, content: bytes, dots: bool
) -> None:
    assert read_data([wire]) == (content, dots)
    assert read_data([wire[:3], wire[3:]]) == (content, dots)


def test_smtp_to_pop3_on_every_database(db_url: str, tmp_path: Path) -> None:
    """Through the whole server: SMTP's word is stored, and RETR sends the reference."""
    bodies = [b"Subject: plain\r\n\r\nno dots here\r\n",
              b"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\nend\r\n"]
    with RunningServer(make_data_dir(tmp_path, db_url)) as server:
        server.add_user("bob@test.local", "Pop-secret-42")
        with server.smtp() as client:
            for body in bodies:
                client.sendmail("x@remote.example", ["bob@test.local"], body)
        assert flags_of(server.runtime.engine) == [False, True]
        box = server.maildir("bob@test.local")
        files = [p.read_bytes() for sub in ("new", "cur") for p in (box / sub).iterdir()]
        # Each body with its trace headers, as the file holds it.
        stored = {b: next(f for f in files if f.endswith(b)) for b in bodies}
        with socket.create_connection(("127.0.0.1", server.port("pop3")), timeout=10) as sock:
            stream = sock.makefile("rb")
            stream.readline()
            sock.sendall(b"USER bob@test.local\r\nPASS Pop-secret-42\r\nRETR 1\r\nRETR 2\r\n")
            assert stream.readline().startswith(b"+OK")
            assert stream.readline().startswith(b"+OK")
            for body in bodies:
                assert stream.readline().startswith(b"+OK")
                expected = reference(stored[body])
                assert stream.read(len(expected)) == expected


def test_top_stuffs_the_lines_it_sends(rig: Pop3Rig) -> None:
    dotted = HEAD + b"a\r\n..\r\n...\r\n.x\r\n"
    rig.deliver(dotted)
    sock, stream = raw_session(rig.start(), b"TOP 1 2\r\nTOP 1 0\r\nNOOP\r\n")
    with sock:
        for cut in (HEAD + b"a\r\n..\r\n", HEAD):
            assert stream.readline() == b"+OK Top of message follows\r\n"
            expected = reference(cut)
            assert stream.read(len(expected)) == expected
        assert stream.readline() == b"+OK\r\n"
