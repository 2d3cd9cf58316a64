"""A webmail message written to a spool file, its attachments encoded a piece at a time.

`build_message` gives `email` every attachment's bytes, and `email` base64-encodes
them into a str, cuts that into a list of lines and writes those into a buffer:
building a message with one 20 MiB attachment peaked at 112 MiB above its input
(tracemalloc), and the webmail built each message twice (for the recipients and for
Sent), after reading the upload whole. A send of a 20 MiB attachment grew the web
process's peak RSS by 214 MiB (to a local mailbox) and 170 MiB (queued); written
here, by 5 and 6-7 MiB (4 MiB from a staged upload; tests/test_web_send_memory.py).

`spool_message` has `email` write the same message with a stand-in for each file (a
unique base64 line), then writes the body into a file, putting in place of each
stand-in the file's base64 (76-character lines, as `email` writes them), read
57 KiB at a time from its path or upload. The header section stays in memory twice,
with and without Bcc, so one file serves both copies as a `SpooledMessage` prefix
(recipients never see Bcc; the copy kept in Sent or Drafts has it). The bytes are
those `build_message` writes for the same message (tests/test_web_send_memory.py
compares them). A message forwarded as an attachment has a stand-in line too, and
is copied in its place from its bytes or its file (the stored original) as it
came, its line ends made CRLF, 57 KiB at a time (`email` parsed and wrote it again
whole: a 20 MiB one grew the web process by 322 MiB; now 3.9 MiB,
tests/test_web_forward_memory.py).
"""

from __future__ import annotations

import base64
import io
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from nmail.mime.composing import (
    Outgoing,
    OutgoingFile,
    crlf_lines,
    message_marker,
    message_of,
)

LINES = 1024  # base64 lines encoded at once: 57 KiB read, 78 KiB written


@dataclass(frozen=True, slots=True)
class SpooledParts:
    """The two header sections (each with its blank line) and the body's size in the file."""

    head: bytes  # for the recipients: no Bcc
    head_bcc: bytes  # for the copy kept in Sent or Drafts
    size: int


def spool_message(out: Outgoing, file: IO[bytes], *, hostname: str) -> SpooledParts | None:
    """Write `out`'s body (all after the header section) into `file`; see the docstring.
    None, writing nothing, when what `email` wrote has a bare CR or LF: a spooled
    message is queued as it is, and the queue would refuse it, where the bytes
    `build_message` gives are made CRLF-clean on the way in. (A forwarded message's
    own bare line ends, which did that, are now made CRLF as it is copied.)"""
    stand_ins: dict[int, bytes] = {}

    def stand_in(item: OutgoingFile) -> bytes:
        raw = secrets.token_bytes(45)  # one base64 line of 60 characters, unique
        stand_ins[id(item)] = base64.b64encode(raw) + b"\r\n"
        return raw

    markers = [message_marker() for _ in out.attached_messages]
    skeleton = message_of(out, hostname=hostname, include_bcc=True, content=stand_in,
                          marker=markers.__getitem__).as_bytes()
    if not skeleton.count(b"\r") == skeleton.count(b"\n") == skeleton.count(b"\r\n"):
        return None
    end = skeleton.index(b"\r\n\r\n") + 4
    head_bcc, body = skeleton[:end], skeleton[end:]
    written = 0
    start = 0
    # In the order `message_of` writes them: the attached messages, then the files.
    places: list[tuple[bytes, Callable[[], int]]] = [
        (marker, partial(_write_crlf, file, attached))
        for marker, attached in zip(markers, out.attached_messages, strict=True)]
    places += [(stand_ins[id(item)], partial(_write_base64, file, item.data))
               for item in out.files]
    for marker, write in places:
        at = body.index(marker, start)
        written += _write(file, body[start:at]) + write()
        start = at + len(marker)
    written += _write(file, body[start:])
    file.flush()
    return SpooledParts(without_bcc(head_bcc), head_bcc, written)


def without_bcc(head: bytes) -> bytes:
    """A header section without its Bcc field (and that field's folded lines)."""
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\r\n"):
        if dropping and line[:1] in (b" ", b"\t"):
            continue
        dropping = line[:4].lower() == b"bcc:"
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept)


def _write(file: IO[bytes], data: bytes) -> int:
    file.write(data)
    return len(data)


def _write_base64(file: IO[bytes], data: bytes | Path | IO[bytes]) -> int:
    written = 0
    with _opened(data) as source:
        while True:
            chunk = _read_full(source, 57 * LINES)
            if not chunk:
                return written
            written += _write(file, base64.encodebytes(chunk).replace(b"\n", b"\r\n"))


def _write_crlf(file: IO[bytes], data: bytes | IO[bytes]) -> int:
    """An attached message as it is but for its line ends, all made CRLF (a spooled
    message is queued as it is, and the queue refuses a bare CR or LF), ending with
    one; read a piece at a time (a CR at a piece's end waits for the next piece)."""
    written = 0
    held = b""
    last = b""
    with _opened(data) as source:
        while piece := source.read(57 * LINES):
            piece = held + piece
            held = b"\r" if piece.endswith(b"\r") else b""
            piece = piece[:len(piece) - len(held)]
            if piece:
                fixed = crlf_lines(piece)
                written += _write(file, fixed)
                last = fixed[-2:]
    if held or last != b"\r\n":
        written += _write(file, b"\r\n")
    return written


@contextmanager
def _opened(data: bytes | Path | IO[bytes]) -> Iterator[IO[bytes]]:
    if isinstance(data, Path):
        with open(data, "rb") as handle:
            yield handle
    elif isinstance(data, bytes):
        yield io.BytesIO(data)
    else:
        data.seek(0, os.SEEK_SET)
        yield data


def _read_full(source: IO[bytes], count: int) -> bytes:
    """`count` bytes (fewer only at the end): every chunk but the last must be whole
    57-byte lines, or a line would be cut short in the middle of the attachment."""
    data = source.read(count)
    while data and len(data) < count:
        more = source.read(count - len(data))
        if not more:
            break
        data += more
    return data
