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
compares them).
"""

from __future__ import annotations

import base64
import io
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nmail.mime.composing import Outgoing, OutgoingFile, message_of

LINES = 1024  # base64 lines encoded at once: 57 KiB read, 78 KiB written


@dataclass(frozen=True, slots=True)
class SpooledParts:
    """The two header sections (each with its blank line) and the body's size in the file."""

    head: bytes  # for the recipients: no Bcc
    head_bcc: bytes  # for the copy kept in Sent or Drafts
    size: int


def spool_message(out: Outgoing, file: IO[bytes], *, hostname: str) -> SpooledParts | None:
    """Write `out`'s body (all after the header section) into `file`; see the docstring.
    None, writing nothing, when what `email` wrote has a bare CR or LF (a forwarded
    message's own): a spooled message is queued as it is, and the queue would refuse
    it, where the bytes `build_message` gives are made CRLF-clean on the way in."""
    stand_ins: dict[int, bytes] = {}

    def stand_in(item: OutgoingFile) -> bytes:
        raw = secrets.token_bytes(45)  # one base64 line of 60 characters, unique
        stand_ins[id(item)] = base64.b64encode(raw) + b"\r\n"
        return raw

    skeleton = message_of(out, hostname=hostname, include_bcc=True,
                          content=stand_in).as_bytes()
    if not skeleton.count(b"\r") == skeleton.count(b"\n") == skeleton.count(b"\r\n"):
        return None
    end = skeleton.index(b"\r\n\r\n") + 4
    head_bcc, body = skeleton[:end], skeleton[end:]
    written = 0
    start = 0
    for item in out.files:
        marker = stand_ins[id(item)]
        at = body.index(marker, start)
        written += _write(file, body[start:at]) + _write_base64(file, item.data)
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
