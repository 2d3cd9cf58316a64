"""A large queued body sent from its file, in pieces, never read whole.

Issue 9 item 2, the queue's half: a message past 1 MiB is queued from its
spool file without a copy in memory (delivery/intake.py,
nmail/message_source.py); sending it used to read the whole body file
(queue/jobs.py) and dot-stuff it as one more copy, so each 24 MiB message
on the way out held ~50 MiB in worker 0. A `QueuedBody` names the file,
where the message starts in it (after the envelope line) and its size;
`prepare_job` makes one (in its thread) for a body past `LARGE`, checking
the size as `Spool.read` does and noting whether it is all ASCII (the
8BITMIME choice); the SMTP client sends `wire_pieces`, each piece read in
a thread and cut after a CRLF, so dot-stuffing and the line-ending check
(`protocols.smtp.client.wire_body`) work on each piece as on the whole.
The file stays until every recipient is settled (bookkeeping), so it
cannot vanish under a send; a read error is a lost session (retried).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from nmail.protocols.smtp.client import clean_lines
from nmail.queue import envelope_line

LARGE = 1 << 20  # bodies past this are sent from their file
PIECE = 256 * 1024  # bytes read (and written to the link) at once


@dataclass(frozen=True, slots=True)
class QueuedBody:
    """`size` bytes of a queue body file from `offset` (past the envelope line)."""

    path: Path
    offset: int
    size: int
    ascii: bool

    def __len__(self) -> int:
        return self.size

    def isascii(self) -> bool:
        return self.ascii

    def pieces(self, piece: int = PIECE) -> Generator[bytes, None, None]:
        """The message in pieces that each end after a CRLF (the last: where it ends)."""
        if self.size == 0:
            yield b""  # sent as wire_body sends an empty body: one CRLF
            return
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            left = self.size
            carry = b""
            while left > 0:
                data = handle.read(min(piece, left))
                if not data:
                    raise OSError(f"{self.path.name}: shorter than its {self.size} bytes")
                left -= len(data)
                if carry:
                    data = carry + data
                if left == 0:
                    yield data
                    return
                cut = data.rfind(b"\r\n") + 2
                if cut < 2:
                    carry = data  # no line end yet: read on
                    continue
                carry = data[cut:]
                yield data[:cut]


def wire_piece(piece: bytes) -> bytes:
    """One piece of the body as `wire_body` sends it (the piece starts a line)."""
    stuffed = clean_lines(piece).replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def open_body(path: Path, expected_size: int) -> QueuedBody:
    """The QueuedBody of a body file whose message has `expected_size` bytes;
    OSError when it is not readable, ValueError when its size is not that."""
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
        line, _ = envelope_line.split(head)
        offset = 0 if line is None else len(envelope_line.MARKER) + len(line) + 2
        total = os.fstat(handle.fileno()).st_size
        if total - offset != expected_size:
            raise ValueError(
                f"body file {path.name} has {total - offset} bytes, {expected_size} expected"
            )
        handle.seek(offset)
        ascii_only = True
        while ascii_only:
            data = handle.read(1 << 20)
            if not data:
                break
            ascii_only = data.isascii()
    return QueuedBody(path, offset, expected_size, ascii_only)
