"""DATA content: finding CRLF.CRLF in a buffer and checking what it enclosed.

The buffer is scanned with bytes.find, never line by line. Only the exact
sequence CRLF "." CRLF ends the data: bare CR or LF variants (the SMTP
smuggling class: "\\n.\\n", "\\r.\\r", "\\r\\n.\\n", ...) are content, and any
bare CR or LF makes the whole message refused once the real end arrives.

A message larger than `spill_at` does not stay in memory while it arrives
(issue 9, item 2: 50 MiB per connection, held by any client that stops
mid-DATA): whole lines past that size are checked, unstuffed and handed to
a `BodySpill` (the server's is a nameless file); the complete message is
then the spill's `finish()`, a `MessageSource` that stays in its file
(nmail/message_source.py). The cut is always after a CRLF, so every piece starts
a line: the checks, the unstuffing and the terminator search (a piece may
end just before "." CRLF) work on each piece as on the whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from nmail.message_source import MessageSource
from nmail.protocols.smtp.replies import (
    BARE_LINE_ENDING,
    MESSAGE_TOO_BIG,
    NO_ROOM,
    TEXT_LINE_TOO_LONG,
    Reply,
)

END_OF_DATA = b"\r\n.\r\n"
# What both a dot-stuffed line and the end of data start with.
DOT_LINE = b"\r\n."
# The content's first line has no CRLF before it inside the buffer.
EMPTY_DATA = b".\r\n"
MAX_TEXT_LINE = 1000  # octets including CRLF, RFC 5321 4.5.3.1.6


# Content up to this size is checked for bare line endings by one split at
# CRLF (see line_problem); past it, by counting, which holds no list.
SPLIT_CHECK_MAX = 64 * 1024


def line_problem(raw: bytes) -> Reply | None:
    """Why `raw` must be refused for its lines (a bare CR or LF first, then a
    line over 1000 octets with its CRLF), or None.

    Up to SPLIT_CHECK_MAX octets, the bare check is one split at CRLF: what
    is left of a line ending once the CRLFs are gone is a bare one (two
    memchr tests, `int in bytes`). The line lengths are has_long_line's
    strides, not the split's pieces: max(map(len, lines)) cost ~44k
    instructions on smtp-source's 10 KB message (133 lines), the strides
    ~27k (11 rfind calls). line_problem 138k -> 121k a message (callgrind,
    bench/smtp_instructions.py). The split's list is bounded by the size (a
    few hundred KB at worst).
    """
    if len(raw) > SPLIT_CHECK_MAX:
        if has_bare_line_ending(raw):
            return BARE_LINE_ENDING
    else:
        rest = b"".join(raw.split(b"\r\n"))
        if 13 in rest or 10 in rest:
            return BARE_LINE_ENDING
    return TEXT_LINE_TOO_LONG if has_long_line(raw) else None


def has_bare_line_ending(raw: bytes) -> bool:
    """True when raw holds a CR not followed by LF or an LF not preceded by CR."""
    pairs = raw.count(b"\r\n")
    return raw.count(b"\r") != pairs or raw.count(b"\n") != pairs


def has_long_line(raw: bytes) -> bool:
    """True when a line is longer than 1000 octets with its CRLF (998 of text).

    A line ends at an LF, and a CR just before that LF is not text; the last
    line may end without one. Rather than looking at every line, stride:
    from a line's start, the last LF within the next 999 octets ends every
    line that starts before it, each of at most 998 octets; with no LF
    there, the line that starts here is measured. So ~n/960 rfind calls
    for usual text instead of a call per line or per 499-octet window.
    """
    limit = MAX_TEXT_LINE - 2
    n = len(raw)
    pos = 0
    while n - pos > limit:
        lf = raw.rfind(b"\n", pos, pos + limit + 1)
        if lf >= 0:
            pos = lf + 1
            continue
        end = raw.find(b"\n", pos + limit + 1)
        if end < 0:
            return True  # the last line, at least 999 octets and no line ending
        if end - pos - (raw[end - 1] == 13) > limit:
            return True
        pos = end + 1  # 998 octets and CRLF: the longest a line may be
    return False


def unstuffed_length(raw: bytes | bytearray, end: int) -> int:
    """The length raw[:end] will have after dot-unstuffing."""
    dots = raw.count(b"\r\n.", 0, end)
    if raw[:1] == b".":
        dots += 1
    return end - dots


def unstuff(raw: bytes, stuffed: bool | None = None) -> bytes:
    """Remove the leading dot of every line that starts with one (RFC 5321 4.5.2).

    `stuffed`: whether a line after the first starts with a dot, when the
    caller knows (DataReader's scan saw it); None: look. `raw` itself when
    no line starts with a dot: DataReader.dot_lines tells by that, without a
    scan of its own.
    """
    if stuffed or (stuffed is None and raw.find(DOT_LINE) >= 0):
        raw = raw.replace(DOT_LINE, b"\r\n")
    if raw[:1] == b".":
        raw = raw[1:]
    return raw


def finish_message(
    raw: bytes, max_size: int, oversized: bool, stuffed: bool | None = None
) -> bytes | Reply:
    """The content to hand on, or the reply refusing it.

    `raw` is everything between the DATA reply and CRLF.CRLF, with the final
    CRLF; `oversized` says the scanner already dropped content over the limit;
    `stuffed` as for unstuff().
    """
    if oversized:
        return MESSAGE_TOO_BIG
    refusal = line_problem(raw)
    if refusal is not None:
        return refusal
    content = unstuff(raw, stuffed)
    if len(content) > max_size:
        return MESSAGE_TOO_BIG
    return content


class BodySpill(Protocol):
    """Where a large message's content waits (the I/O is the server's).

    Making one, write() and finish() may raise OSError (a full disk): the
    message is then read to its end and refused with 452 4.3.1.
    """

    def write(self, content: bytes) -> None: ...

    def finish(self) -> MessageSource:
        """Everything written, in order; the spill is the result's now."""
        ...

    def discard(self) -> None:
        """Forget it all (the message ended or was abandoned)."""
        ...


SPILL_AT = 1 << 20  # bytes of a message kept in memory before it spills


class DataReader:
    """Finds the end of one DATA in a buffer, holding no content past the size limit,
    and (with `spill`) no more than about `spill_at` bytes of it in memory."""

    def __init__(
        self,
        max_size: int,
        spill: Callable[[], BodySpill] | None = None,
        spill_at: int = SPILL_AT,
    ) -> None:
        self.max_size = max_size
        self._at_start = True
        self._scan_from = 0
        # A line after the first of the buffer started with a dot (see _end).
        self._stuffed = False
        self._oversized = False
        self._make_spill = spill
        # A piece must hold a whole legal line, or a line without its CRLF
        # yet would be taken for one too long.
        self._spill_at = max(spill_at, 2 * MAX_TEXT_LINE)
        self._spill: BodySpill | None = None
        self._spilled = 0  # unstuffed bytes handed to the spill
        # What the spilled pieces showed (refused once the message is complete).
        self._bare = False
        self._long = False
        self._no_room = False  # the spill failed (OSError): 452 at the end
        # Of the last content scan() gave: False when no line of it starts with
        # ".", True when one may, None when not known (a spilled message). For
        # the store (mailstore NewMessage.dot_lines): POP3 then need not look.
        self.dot_lines: bool | None = None

    def discard(self) -> None:
        """The message will not be finished: let go of what was spilled."""
        if self._spill is not None:
            self._spill.discard()
            self._spill = None

    def scan(self, buf: bytearray) -> MessageSource | Reply | None:
        """Take one message off the front of buf: its content, its refusal, or None (need more).

        Content the client sends past the size limit is dropped from buf as it
        arrives; reading goes on to the terminator so the session stays in step.
        """
        if self._at_start:
            if len(buf) < len(EMPTY_DATA):
                if EMPTY_DATA.startswith(buf):
                    return None
            elif buf[: len(EMPTY_DATA)] == EMPTY_DATA:
                del buf[: len(EMPTY_DATA)]
                return self._finish(b"")
            self._at_start = False
        end = self._end(buf)
        if end >= 0:
            # One copy: buf[:n] would copy into a bytearray, then bytes() again.
            with memoryview(buf) as view:
                raw = view[: end + 2].tobytes()
            del buf[: end + len(END_OF_DATA)]
            return self._finish(raw)
        keep = len(END_OF_DATA) - 1  # a terminator may straddle the next read
        spill_now = self._make_spill is not None and len(buf) > self._spill_at
        if spill_now and not self._oversized and self._spill_lines(buf, keep):
            return self.scan(buf)  # the rest starts a line: look at it afresh
        self._scan_from = max(0, len(buf) - keep)
        if (
            not self._oversized
            and len(buf) - keep > self.max_size
            and unstuffed_length(buf, len(buf) - keep) > self.max_size
        ):
            self._oversized = True
        if self._oversized and len(buf) > keep:
            del buf[:-keep]
            self._scan_from = 0
            self.discard()
        return None

    def _end(self, buf: bytearray) -> int:
        """Where CRLF.CRLF starts in buf, else -1; notes on the way whether a line
        starts with a dot, until one does.

        Searching for CRLF "." finds both the end and the dot-stuffed lines, for
        a little more than a search for CRLF.CRLF, and spares unstuff() its own
        search of the whole message (~32k instructions on 10 KB): a scan of
        smtp-source's message in 3 reads, 258k -> 235k (callgrind). One dotted
        line found, the rest is searched for the end alone.
        """
        if self._stuffed:
            return buf.find(END_OF_DATA, self._scan_from)
        at = buf.find(DOT_LINE, self._scan_from)
        if at < 0:
            return -1
        after = buf[at + 3 : at + 5]
        if after == b"\r\n":
            return at
        if not b"\r\n".startswith(after):  # "", "\r": the end may follow
            self._stuffed = True
            return buf.find(END_OF_DATA, at + 1)
        return -1  # it may be the end: looked at again with the next bytes

    def _spill_lines(self, buf: bytearray, keep: int) -> bool:
        """Move the whole lines at the front of buf to the spill; False if none."""
        cut = buf.rfind(b"\r\n", 0, len(buf) - keep)
        if cut < 0:
            # One line of a megabyte: refused as too long at the end, so nothing
            # of it is kept but what a terminator could start with.
            self._long = True
            self.discard()
            del buf[:-keep]
            self._scan_from = 0
            return False
        piece = bytes(buf[: cut + 2])
        del buf[: cut + 2]
        self._at_start = True
        self._scan_from = 0
        self._bare = self._bare or has_bare_line_ending(piece)
        self._long = self._long or has_long_line(piece)
        content = unstuff(piece)
        self._spilled += len(content)
        if self._spilled > self.max_size:
            self._oversized = True
            self.discard()
            return True
        if self._bare or self._long or self._no_room:  # refused at the end: keep nothing
            self.discard()
        else:
            try:
                if self._spill is None:
                    assert self._make_spill is not None
                    self._spill = self._make_spill()
                self._spill.write(content)
            except OSError:
                self._no_room = True
                self.discard()
        return True

    def _finish(self, raw: bytes) -> MessageSource | Reply:
        """The message is complete: `raw` is what followed the spilled part."""
        spill, self._spill = self._spill, None
        handed = False
        try:
            if spill is None and not (self._spilled or self._long):
                found = finish_message(raw, self.max_size, self._oversized, self._stuffed)
                # unstuff() gave raw itself: no line of it started with a dot.
                self.dot_lines = found is not raw
                return found
            self.dot_lines = None
            # As finish_message, over the spilled pieces and the rest together.
            if self._oversized:
                return MESSAGE_TOO_BIG
            if self._bare or has_bare_line_ending(raw):
                return BARE_LINE_ENDING
            if self._long or has_long_line(raw):
                return TEXT_LINE_TOO_LONG
            tail = unstuff(raw)
            if self._spilled + len(tail) > self.max_size:
                return MESSAGE_TOO_BIG
            if self._no_room:
                return NO_ROOM
            if spill is None:
                return tail
            try:
                spill.write(tail)  # so the whole message is in the spill
                content = spill.finish()
            except OSError:
                return NO_ROOM
            handed = True
            return content
        finally:
            if spill is not None and not handed:
                spill.discard()
