"""What a delivery notice quotes of the original message, read from its body file.

A notice (failure, delay, relayed, an admin's bounce) quotes the original's
header section (RET=HDRS, or no RET) or the message (RET=FULL; kept only
for a logged-in sender, delivery/submission.py). It used to read the whole
body file for that, however large, and build the notice around it: a
failure about one 20 MiB queued message grew the settling process's peak
RSS by 45 MiB (RET=HDRS) and 100 MiB (RET=FULL); now by 4-5 MiB, most of
it not the notice's (tests/test_notice_memory.py, VmHWM after clear_refs).
So:

- only the header section is read for RET=HDRS, in 64 KiB pieces until the
  blank line that ends it (a section longer than QUOTE_LIMIT is cut after
  a CRLF: no real message has one);
- RET=FULL quotes the whole message up to QUOTE_LIMIT (1 MiB, the size
  past which the queue sends a body from its file, body_file.LARGE), so
  every message up to that is quoted whole as before; of a larger one, the
  first QUOTE_LIMIT bytes cut after a CRLF, and the notice says how large
  the whole was (RFC 3461 4.3 lets an MTA return less than the whole of a
  large message; Exim cuts at 100 KB likewise, Postfix sends headers only
  past 50 KB). The sender still sees what they wrote, which comes first.

The same cut applies to a body already in memory (a small message just
sent), so what a notice quotes does not depend on where the body was read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nmail.queue import envelope_line
from nmail.queue.body_file import LARGE

QUOTE_LIMIT = LARGE
PIECE = 64 * 1024
_ENVELOPE_LIMIT = 1 << 20  # an envelope line is one JSON line, far shorter


@dataclass(frozen=True, slots=True)
class Quoted:
    """What a notice quotes (`data`) and the size of the whole message."""

    data: bytes
    size: int
    full: bool = False  # RET=FULL: data is the message (or its beginning), not its headers

    @property
    def cut(self) -> bool:
        """True when `data` is only the beginning of the message (RET=FULL, large)."""
        return self.full and len(self.data) < self.size


def from_bytes(message: bytes, full: bool) -> Quoted:
    """What a notice quotes of a message held in memory."""
    end = len(message) if full else _head_end(message)
    return Quoted(_cut(message, len(message), full, end), len(message), full)


def from_file(path: Path, full: bool) -> Quoted:
    """What a notice quotes of a queue body file (envelope line skipped), reading at
    most QUOTE_LIMIT bytes of it plus one piece; OSError when it cannot be read."""
    with open(path, "rb") as handle:
        first = handle.readline(_ENVELOPE_LIMIT)
        offset = len(first) if first.startswith(envelope_line.MARKER) and first.endswith(
            b"\r\n") else 0
        size = os.fstat(handle.fileno()).st_size - offset
        handle.seek(offset)
        start = b""
        while len(start) < min(size, QUOTE_LIMIT + 2):
            data = handle.read(PIECE)
            if not data:
                break
            start += data
            if not full and _head_end(start) >= 0:
                break
    end = len(start) if full else _head_end(start)
    return Quoted(_cut(start, size, full, end), size, full)


def _head_end(start: bytes) -> int:
    """Where the header section ends (after its last CRLF), or -1 when not in `start`."""
    end = start.find(b"\r\n\r\n")
    return end + 2 if end >= 0 else -1


def _cut(start: bytes, size: int, full: bool, end: int) -> bytes:
    """The quote from the message's first bytes `start` (all of it when len == size)."""
    if 0 <= end <= QUOTE_LIMIT and (not full or len(start) == size):
        return start[:end]  # the header section, or the whole message
    if len(start) >= size and size <= QUOTE_LIMIT:
        return start  # no blank line: the whole message is its header section
    head = start[:QUOTE_LIMIT]
    line_end = head.rfind(b"\r\n")
    return head[: line_end + 2] if line_end >= 0 else head
