"""The index writer's wire (marshal frames): round trips, and everything that is
not a frame of ours refused with ValueError (the writer then drops that worker)."""

from __future__ import annotations

import contextlib
import marshal
import secrets
import socket
import struct
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from nmail.mailstore import index_client, index_wire
from nmail.mailstore.delivery_batch import FolderGone, PreparedMessage
from nmail.mailstore.index_client import RemoteIndex
from nmail.mailstore.index_service import _Client
from nmail.mailstore.indexrow import SUMMARY_KEYS, summarize, summary_values
from nmail.mailstore.model import StoredMessage, StoreError

CONTENT = b"From: Bob <bob@sender.test>\r\nSubject: Hi\r\n\r\nHello there.\r\n"


def item(n: int = 1, **changes: Any) -> PreparedMessage:
    base = f"1700000000.M{n}P1Q{n}.mx.example.test"
    folder = f"/srv/mail/example.test/user{n}/Maildir"
    prepared = PreparedMessage(
        account_id=n, folder_id=10 + n, folder_dir=folder, tmp_path=f"{folder}/tmp/{base}",
        base=base, size=len(CONTENT), flags_text="", letters="", in_new=True,
        internal_date=1_700_000_000, columns=summary_values(summarize(CONTENT), 1_700_000_000),
    )
    return prepared._replace(**changes)


def stored(n: int = 1) -> StoredMessage:
    return StoredMessage(n, 10 + n, n, 100 + n, f"base{n}", f"/srv/mail/u{n}/Maildir/new/b{n}")


def request(items: list[PreparedMessage]) -> bytes:
    return index_wire.frame(index_wire.encode_items(items))


def writer_frames(data: bytes) -> list[list[PreparedMessage]]:
    client = _Client(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    try:
        client.buffer += data
        return client.frames()
    finally:
        client.sock.close()


def test_a_request_arrives_as_it_was_sent() -> None:
    items = [item(1), item(2, in_new=False, flags_text="\\Seen", letters="S")]
    got = writer_frames(request(items) + request(items[:1]))
    assert got == [items, items[:1]]
    assert all(type(i) is PreparedMessage for batch in got for i in batch)
    assert len(items[0].columns) == len(SUMMARY_KEYS)


def test_frames_are_taken_whole_and_the_rest_waits() -> None:
    data = request([item(1)]) + request([item(2)])
    buffer = bytearray()
    out: list[list[PreparedMessage]] = []
    for byte in range(len(data)):  # one byte at a time
        buffer += data[byte : byte + 1]
        out.extend(index_wire.read_frames(buffer, index_wire.decode_items))
    assert out == [[item(1)], [item(2)]]
    assert buffer == bytearray()
    partial = bytearray(data[:-3])
    assert index_wire.read_frames(partial, index_wire.decode_items) == [[item(1)]]
    assert bytes(partial) == data[len(request([item(1)])) : -3]


def test_an_answer_arrives_as_it_was_sent() -> None:
    answers = [("ok", index_wire.encode_stored([stored(1), stored(2)])), ("gone", "folder 3")]
    buffer = bytearray(b"".join(index_wire.frame(a) for a in answers))
    replies = index_client._frames(buffer)
    ok: Future[list[StoredMessage]] = Future()
    gone: Future[list[StoredMessage]] = Future()
    index_client._complete(ok, index_wire.decode_stored, replies[0])
    index_client._complete(gone, index_wire.decode_stored, replies[1])
    assert ok.result() == [stored(1), stored(2)]
    assert ok.result()[0].path == Path("/srv/mail/u1/Maildir/new/b1")
    with pytest.raises(FolderGone, match="folder 3"):
        gone.result()


def _with_header(payload: bytes) -> bytes:
    return index_wire.LENGTH.pack(len(payload)) + payload


GOOD = index_wire.encode_items([item()])[0]

BAD_REQUESTS = {
    "empty frame": _with_header(b""),
    "garbage": _with_header(b"hello"),
    "garbage bytes": _with_header(bytes(range(256))),
    "truncated value": _with_header(marshal.dumps([GOOD])[:-7]),
    "a count beyond the frame": _with_header(b"[" + struct.pack("<i", 1_000_000)),
    "a huge count": _with_header(b"\xdb" + struct.pack("<i", 2**31 - 1) + b"N"),
    "a count beyond the frame, inside": _with_header(
        b"[" + struct.pack("<i", 1) + b"(" + struct.pack("<i", 1_000_000)
    ),
    "json": _with_header(b'[[1, 2, "/d", "/d/tmp/x"]]'),
    "not a list": index_wire.frame({"items": [GOOD]}),
    "a tuple of items": index_wire.frame((GOOD,)),
    "an item as a list": index_wire.frame([list(GOOD)]),
    "a short item": index_wire.frame([GOOD[:-1]]),
    "a long item": index_wire.frame([(*GOOD, 1)]),
    "a str for an int": index_wire.frame([("1", *GOOD[1:])]),
    "a bool for an int": index_wire.frame([(True, *GOOD[1:])]),
    "a float for an int": index_wire.frame([(*GOOD[:5], 1.0, *GOOD[6:])]),
    "bytes for a path": index_wire.frame([(*GOOD[:3], b"/d/tmp/x", *GOOD[4:])]),
    "None for a str": index_wire.frame([(*GOOD[:4], None, *GOOD[5:])]),
    "an int for a bool": index_wire.frame([(*GOOD[:8], 1, *GOOD[9:])]),
    "columns as a list": index_wire.frame([(*GOOD[:-1], list(GOOD[-1]))]),
    "too few columns": index_wire.frame([(*GOOD[:-1], GOOD[-1][:-1])]),
    "a column of bytes": index_wire.frame([(*GOOD[:-1], (*GOOD[-1][:-1], b"x"))]),
    "a column of None": index_wire.frame([(*GOOD[:-1], (None, *GOOD[-1][1:]))]),
    "a code object": index_wire.frame([compile("1", "x", "eval")]),
    "a good item, then a bad one": index_wire.frame([GOOD, GOOD[:3]]),
}


@pytest.mark.parametrize("data", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_bad_request_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        writer_frames(data)
    # Behind a good request too: the good one does not hide it.
    with pytest.raises(ValueError):
        writer_frames(request([item()]) + data)


def test_an_oversize_frame_is_refused_before_it_arrives() -> None:
    with pytest.raises(ValueError, match="frame of"):
        writer_frames(index_wire.LENGTH.pack(index_wire.MAX_FRAME + 1) + b"[")
    assert writer_frames(index_wire.LENGTH.pack(index_wire.MAX_FRAME)) == []  # waits for it


def test_bad_answers_fail_the_delivery_or_the_connection() -> None:
    with pytest.raises(ValueError):
        index_client._frames(bytearray(_with_header(b"\xff\xfe")))
    with pytest.raises(ValueError):
        index_client._frames(bytearray(index_wire.LENGTH.pack(index_wire.MAX_FRAME + 1)))
    good = index_wire.encode_stored([stored()])[0]
    for reply in (
        ("ok", "nope"),
        ("ok", [list(good)]),
        ("ok", [good[:-1]]),
        ("ok", [(*good[:-1], b"/path")]),
        ("ok", [("1", *good[1:])]),
        ("ok", (good,)),
        ("ok",),
        "ok",
        None,
    ):
        future: Future[list[StoredMessage]] = Future()
        index_client._complete(future, index_wire.decode_stored, reply)
        with pytest.raises(StoreError):
            future.result()


class FakeWriter:
    """A listener that answers every request with `answer` (bytes)."""

    def __init__(self, answer: bytes) -> None:
        self.address = f"\0nmail-test-{secrets.token_hex(8)}"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.address)
        self.listener.listen()
        self.answer = answer
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:  # closed before the client's connection was taken
            return
        with conn, contextlib.suppress(OSError):
            (size,) = index_wire.LENGTH.unpack(index_wire.recv_exact(conn, 4))
            index_wire.recv_exact(conn, size)
            conn.sendall(self.answer)
            conn.recv(1)  # until the client goes

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (_with_header(b"\x00garbage"), "index writer unavailable"),
        (index_wire.frame(("ok", [("x",)])), "bad answer"),
        (index_wire.frame(("error", "could not store")), "could not store"),
    ],
)
def test_a_worker_survives_bad_answers(answer: bytes, error: str) -> None:
    writer = FakeWriter(answer)
    client = RemoteIndex(writer.address)
    try:
        with pytest.raises(StoreError, match=error):
            client.submit([item()]).result(10)
    finally:
        client.close()
        writer.close()


def test_a_worker_talks_only_to_its_own_users_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    writer = FakeWriter(index_wire.frame(("ok", [])))
    client = RemoteIndex(writer.address)
    try:
        monkeypatch.setattr(index_wire.os, "getuid", lambda: 12345)
        with pytest.raises(StoreError, match=r"index writer unavailable.*not this user"):
            client.submit([item()]).result(10)
    finally:
        client.close()
        writer.close()


def test_the_peer_is_this_user() -> None:
    one, two = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with one, two:
        assert index_wire.peer_uid(one) == index_wire.os.getuid()
        assert index_wire.same_user(two)
