"""Issue 9 item 2: a large message read from its spool file gives what the whole bytes give.

The index summary of its outline (mime/outline.py) equals the summary of
the whole message; the DKIM body hash computed piece by piece equals
dkimpy's over the whole body, and the signature made from it verifies;
write_file copies it exactly, and leaves nothing when the disk is full.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import tempfile
from pathlib import Path

import dkim
import pytest
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.durable import write_file
from nmail.message_source import SpooledMessage, message_head, with_prefix
from nmail.mime.outline import outline
from nmail.mime.summary import summarize
from nmail.protocols.smtp.client import END_OF_DATA, wire_body
from nmail.queue.body_file import open_body, wire_piece
from nmail.queue.dkim import generate_key, public_record, sign
from nmail.queue.dkim_stream import relaxed_body_hash

KEY = generate_key()


def spooled(data: bytes) -> SpooledMessage:
    file = tempfile.TemporaryFile()  # noqa: SIM115 (the SpooledMessage closes it)
    file.write(data)
    file.flush()
    return SpooledMessage(file, len(data))


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def attachment_late(text_size: int) -> bytes:
    """multipart/mixed: a long text part, then a PDF attachment past the kept start."""
    text = (b"Lorem ipsum dolor sit amet " * 36 + b"\r\n") * (text_size // 1000)
    pdf = base64.encodebytes(os.urandom(30_000)).replace(b"\n", b"\r\n")
    return (
        b"From: Kim <kim@example.com>\r\nTo: bob@test.local\r\nSubject: report\r\n"
        b"Message-ID: <late@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
        b"-- \r\nKim\r\n"
        b"--b1\r\nContent-Type: application/pdf; name=r.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + pdf +
        b"--b1--\r\n"
    )


@pytest.mark.parametrize("text_size", [1_000, 400_000, 3_000_000])
def test_the_outline_summarizes_as_the_whole_message(text_size: int) -> None:
    message = attachment_late(text_size)
    cut = outline(pieces(message, 65_536))
    assert len(cut) < 400_000
    whole, short = summarize(message), summarize(cut)
    assert short == whole
    assert whole.has_attachments and whole.subject == "report"


def test_a_plain_message_outline_keeps_its_start() -> None:
    message = b"Subject: plain\r\n\r\n" + (b"x" * 998 + b"\r\n") * 3000
    cut = outline(pieces(message, 1 << 20))
    assert message.startswith(cut) and len(cut) < 300_000
    assert summarize(cut) == summarize(message)


body_line = st.one_of(
    st.just(b""), st.just(b" \t "), st.just(b"--b"),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b" ").replace(b"\n", b"\t")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(body_line, max_size=40), st.integers(1, 50), st.booleans())
def test_the_streamed_body_hash_is_dkimpys(lines: list[bytes], size: int, crlf: bool) -> None:
    body = b"\r\n".join(lines) + (b"\r\n" if crlf and lines else b"")
    expected = hashlib.sha256(Relaxed.canonicalize_body(body)).digest()
    assert relaxed_body_hash(pieces(body, size)) == expected


def test_a_spooled_message_signs_and_verifies() -> None:
    message = attachment_late(2_000_000).replace(b"Lorem ipsum", b"Lorem  ipsum \t")
    message += b"\r\n\r\n"  # trailing empty lines: left out of the hash
    source = spooled(message)
    try:
        signature = sign(with_prefix(b"Received: from x\r\n", source), "example.com", "nm", KEY)
        record = public_record(KEY).encode()
        signed = signature + b"Received: from x\r\n" + message
        assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record)
        assert not dkim.verify(signed.replace(b"Kim\r\n", b"Kin\r\n"),
                               dnsfunc=lambda name, timeout=5: record)
        assert signature.startswith(b"DKIM-Signature: ") and signature.endswith(b"\r\n")
    finally:
        source.close()


def test_write_file_copies_a_spooled_message_exactly(tmp_path: Path) -> None:
    message = os.urandom(3_000_000)
    source = spooled(message)
    try:
        write_file(tmp_path / "m", (b"Return-Path: <>\r\n", source.prefixed(b"X: 1\r\n")), 7)
        assert (tmp_path / "m").read_bytes() == b"Return-Path: <>\r\nX: 1\r\n" + message
        assert message_head(source) == message[: 256 * 1024]
    finally:
        source.close()


def test_a_full_disk_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = spooled(b"x" * 2_000_000)

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    try:
        with pytest.raises(OSError, match="No space"):
            write_file(tmp_path / "m", (b"P: 1\r\n", source))
        assert list(tmp_path.iterdir()) == []
    finally:
        source.close()


def test_without_a_kernel_copy_it_copies_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = os.urandom(2_500_000)
    source = spooled(message)

    def cross_device(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", cross_device)
    try:
        write_file(tmp_path / "m", (source,))
        assert (tmp_path / "m").read_bytes() == message
    finally:
        source.close()


wire_line = st.one_of(
    st.just(b"."), st.just(b".."), st.just(b""), st.just(b".x"),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"r").replace(b"\n", b"n")),
)
wire_end = st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r", b""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(wire_line, wire_end), max_size=60), st.integers(1, 64),
       st.booleans())
def test_a_queued_body_sent_in_pieces_is_what_wire_body_sends(
    lines: list[tuple[bytes, bytes]], piece: int, with_envelope: bool
) -> None:
    body = b"".join(text + end for text, end in lines)
    envelope = b"#nmail-envelope {}\r\n" if with_envelope else b""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "q.eml"
        path.write_bytes(envelope + body)
        queued = open_body(path, len(body))
        assert queued.isascii() == body.isascii() and len(queued) == len(body)
        sent = b"".join(wire_piece(p) for p in queued.pieces(piece)) + END_OF_DATA
        assert sent == wire_body(body)
        with pytest.raises(ValueError, match="bytes"):
            open_body(path, len(body) + 1)
