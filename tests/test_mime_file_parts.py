"""Parts found in a message's file (mime/file_parts.py) are the parts found in its bytes.

For messages of every shape (the webmail's own with Korean names, a forward inside,
LF line ends, a preamble and epilogue, empty and unclosed parts, a "--" signature,
the corpus of test messages) and pieces read 7, 64, 1000 bytes and 1 MiB at a time:
the skeleton's parts have the offsets `iter_parts` gives on the whole message,
`file_view` is `read_view`, a part decoded into a file is `transfer_decode` of its
body, `attached_file` is `attached_message`. And an attached message is spooled as
it came (CRLF made of bare line ends) where `build_message` writes the same bytes.
"""

from __future__ import annotations

import base64
import io
import os
import random
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO

import pytest

from nmail.mime import file_parts
from nmail.mime.compose_spool import spool_message
from nmail.mime.composing import Outgoing, OutgoingFile, build_message, crlf_message
from nmail.mime.fields import read_header_block
from nmail.mime.parts import PART_FIELDS, Part, iter_parts
from nmail.mime.preview import transfer_decode
from nmail.mime.reading import attached_message, part_content, read_view

TESTS = Path(__file__).parent
FORWARDED = b"From: a@b.example\r\nSubject: old\r\n\r\nbody\r\n-- \r\nsig\r\n"


def built() -> bytes:
    return build_message(Outgoing(
        sender=("", "me@example.com"), to=(("", "you@example.com"),), subject="자료",
        text="hello\n-- \nsig\n", html="<p>x</p>",
        files=(OutgoingFile("견적서 2026.pdf", "application/pdf", os.urandom(300_000)),
               OutgoingFile("e.txt", "text/plain", b""),
               OutgoingFile("t.txt", "text/plain", b"--x\nline\n\n--\n" * 50)),
        attached_messages=(FORWARDED,)), hostname="h.example")


def shapes() -> list[bytes]:
    raw = built()
    found = [
        raw, raw.replace(b"\r\n", b"\n"),
        b"From: a@b\r\nSubject: x\r\n\r\nplain body\r\nline\r\n",
        b"From: a@b\r\nSubject: x\r\n\r\nno line end at the end",
        b"From: a@b\r\nSubject: x\r\n\r\n", b"From: a@b\r\nSubject: x\r\n",
        b"From: a@b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n\r\nt\r\n"
        b"--b\r\nContent-Type: application/x; name=a.bin\r\nContent-Transfer-Encoding: base64"
        b"\r\n\r\nQUJD\r\n--b--\r\nepilogue\r\n",
        b"From: a@b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--b\r\n"
        b"Content-Type: application/x\r\n\r\n\r\n--b\r\nContent-Type: application/y\r\n\r\n"
        b"unclosed",
        b"From: a@b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: application/x\r\n\r\n" + b"-" * 70_000 + b"\r\n--b--\r\n",
    ]
    found += [path.read_bytes() for path in sorted(TESTS.rglob("*.eml"))[:200]]
    return found


def whole_parts(raw: bytes) -> list[Part]:
    block = read_header_block(raw, frozenset(PART_FIELDS))
    return list(iter_parts(raw, block.fields, block.body_start, len(raw)))


def in_file(raw: bytes) -> IO[bytes]:
    file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller)
    file.write(raw)
    file.flush()
    return file


@pytest.fixture(params=[7, 64, 1000, 1 << 20])
def piece(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(file_parts, "PIECE", request.param)
    yield request.param


def test_the_parts_of_the_file_are_those_of_the_bytes(piece: int) -> None:
    for raw in shapes():
        with in_file(raw) as file:
            parts = file_parts.file_parts(file_parts.skeleton(file))
            assert parts == whole_parts(raw), raw[:200]
            view, _parts = file_parts.file_view(file)
            assert view == read_view(raw), raw[:200]
            for part in parts:
                out = io.BytesIO()
                size = file_parts.copy_decoded(file, part, out)
                expected = transfer_decode(raw[part.start:part.end], part.transfer_encoding)
                assert out.getvalue() == expected and size == len(expected)


def test_a_big_attachment_leaves_a_small_skeleton() -> None:
    raw = build_message(Outgoing(sender=("", "me@example.com"), to=(("", "y@example.com"),),
                                 files=(OutgoingFile("b.bin", "application/octet-stream",
                                                     os.urandom(5 << 20)),)), hostname="h")
    with in_file(raw) as file:
        shape = file_parts.skeleton(file)
        assert len(shape.data) < 2000 and shape.size == len(raw)
        [attachment] = read_view(raw).attachments
        [(info, data)] = file_parts.decoded_parts(file, (attachment.number,),
                                                  tempfile.TemporaryFile)
        with data:
            data.seek(0)
            expected = part_content(raw, attachment.number)
            assert expected is not None and data.read() == expected[1]
            assert info.filename == "b.bin" and info.size == len(expected[1])


def test_an_attached_message_from_a_file() -> None:
    outer = build_message(Outgoing(sender=("", "me@example.com"), to=(("", "y@example.com"),),
                                   attached_messages=(built(),)), hostname="h")
    with in_file(outer) as file:
        for path in ("1", "1.2", "1.3", "0", "9", "1.1", "x", "1." * 9 + "1"):
            found = file_parts.attached_file(file, path, tempfile.TemporaryFile)
            expected = attached_message(outer, path)
            if found is None:
                assert expected is None, path
                continue
            with found:
                found.seek(0)
                assert found.read() == expected, path


def test_a_message_inside_a_file_has_the_parts_of_its_bytes(piece: int) -> None:
    """A window [start, end) of a file (an attached message's bytes in the outer file)
    reads as the message alone, its offsets the file's; nothing outside it is read."""
    for raw in shapes():
        before = b"--b\r\nX" * 300
        with in_file(before + raw + b"\r\n--b--\r\nY" * 100) as file:
            start = len(before)
            shape = file_parts.skeleton(file, start, start + len(raw))
            parts = file_parts.file_parts(shape)
            assert [replace(p, start=p.start - start, end=p.end - start) for p in parts] == (
                whole_parts(raw)), raw[:200]
            view, _parts = file_parts.file_view(file, start, start + len(raw))
            assert view == read_view(raw), raw[:200]


def test_an_attached_message_read_in_place() -> None:
    """`attached_span`: a message/rfc822 part as it came is a window of the outer file;
    one in base64 (against RFC 2046, but sent) is decoded into a file of its own."""
    inner = built()
    encoded = (b"From: a@b\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
               b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               + base64.encodebytes(inner) + b"--o--\r\n")
    as_it_came = build_message(Outgoing(sender=("", "me@example.com"),
                                        to=(("", "y@example.com"),),
                                        attached_messages=(inner,)), hostname="h")
    for outer, in_place in ((as_it_came, True), (as_it_came.replace(b"\r\n", b"\n"), True),
                            (encoded, False), (encoded.replace(b"\r\n", b"\n"), False)):
        with in_file(outer) as file:
            whole = file_parts.whole_file(file)
            for path in ("1", "1.2", "1.3", "0", "9", "1.1", "x", "1." * 9 + "1", "0.2"):
                found = file_parts.attached_span(whole, path, tempfile.TemporaryFile)
                expected = attached_message(outer, path)
                if found is None:
                    assert expected is None, path
                    continue
                got = os.pread(found.file.fileno(), found.end - found.start, found.start)
                assert got == expected, path
                assert (found.file is file) == in_place, path
                if found.file is not file:
                    found.file.close()


@pytest.mark.parametrize("forwarded", [
    FORWARDED, FORWARDED.replace(b"\r\n", b"\n"), b"From: x@y\r\n\r\na\rb\r", b"",
    # A CR as the last byte of the first 57 KiB piece read (13 bytes of header first).
    b"From: x@y\r\n\r\n" + b"x" * (57 * 1024 - 14) + b"\r\n" + b"y" * 100,
    b"From: x@y\r\n\r\n" + b"x" * (57 * 1024 - 14) + b"\ry"],
    ids=["crlf", "lf", "bare-cr", "empty", "crlf-across-pieces", "cr-across-pieces"])
def test_an_attached_message_is_spooled_as_it_came(tmp_path: Path, forwarded: bytes) -> None:
    """From bytes or from a file: the bytes `build_message` writes, the message inside
    is the one given with CRLF line ends, and no bare CR or LF reaches the queue."""
    with in_file(forwarded) as original:
        for source in (forwarded, original):
            out = Outgoing(sender=("", "me@example.com"), to=(("", "y@example.com"),),
                           subject="Fwd: 자료", attached_messages=(source,),
                           message_id="m1@h", date=1.0,
                           files=(OutgoingFile("a.bin", "application/octet-stream",
                                               os.urandom(1000)),))
            random.seed(3)  # email's boundaries
            file = io.BytesIO()
            parts = spool_message(out, file, hostname="h")
            assert parts is not None
            spooled = parts.head_bcc + file.getvalue()
            assert spooled.count(b"\r") == spooled.count(b"\n") == spooled.count(b"\r\n")
            [inner, _file] = read_view(spooled).attachments
            found = part_content(spooled, inner.number)
            assert found is not None and found[1] == crlf_message(forwarded)
            random.seed(3)
            assert build_message(out, hostname="h", include_bcc=True) == spooled
