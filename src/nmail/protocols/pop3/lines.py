"""Splitting the client's byte stream into command lines, with a length limit."""

from __future__ import annotations

import enum
from typing import Final

# RFC 2449: a command line is at most 255 octets, including the CRLF.
COMMAND_LINE_LIMIT: Final = 255
# A SASL response after "+ " carries base64 and may be longer (RFC 5034 sets
# no limit); this one bounds the memory a client can make us hold.
SASL_LINE_LIMIT: Final = 8192


class LineTooLong(enum.Enum):
    """Marker: the line was longer than the limit; its rest is being skipped."""

    TOO_LONG = "too-long"


TOO_LONG: Final = LineTooLong.TOO_LONG


class LineReader:
    """Buffers bytes and hands out complete lines without their line ending.

    A line ends at LF (a preceding CR is removed). A line over the limit is
    reported once as TOO_LONG and everything up to its LF is dropped, so a
    client cannot make the server buffer without bound.

    Each chunk received is split into lines at once (one bytes.split), and
    the lines are handed out from that list: finding each line in a bytearray
    parsed find()'s arguments on every call and copied the line twice (the
    slice, then bytes()). With the parsing changes of the same day, a NOOP
    went from 18.5k to 14.6k instructions in the session (callgrind).
    """

    __slots__ = ("_lines", "_next", "_rest", "_skipping", "pending")

    def __init__(self) -> None:
        self._lines: list[bytes] = []  # complete lines, with their CR if any
        self._next = 0  # index of the next line to hand out
        self._rest: bytes | bytearray = b""  # the incomplete last line
        # How many buffered bytes are not yet handed out (an attribute: read
        # after every RETR, where a property's call cost more than the read).
        self.pending = 0
        self._skipping = False  # dropping a too long line up to its LF

    def feed(self, data: bytes) -> None:
        """Append bytes received from the client."""
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return
            data = data[end + 1 :]
            self._skipping = False
        self.pending += len(data)
        lines = data.split(b"\n")
        rest = self._rest
        if len(lines) == 1:
            # No line end: all of it goes on the incomplete line, appended in
            # place (bytes + bytes at every chunk would copy it over and over).
            if not rest:
                self._rest = data
            elif type(rest) is bytes:
                self._rest = bytearray(rest) + data
            else:
                rest += data
            return
        if rest:
            lines[0] = bytes(rest) + lines[0]
        self._rest = lines.pop()
        if self._next < len(self._lines):
            self._lines += lines  # rare: new lines behind old ones not yet handled
        else:
            self._lines = lines
            self._next = 0

    def discard(self) -> None:
        """Forget everything buffered (STLS: nothing sent in plaintext may survive)."""
        self._lines = []
        self._next = 0
        self._rest = b""
        self.pending = 0
        self._skipping = False

    def next_line(self, limit: int = COMMAND_LINE_LIMIT) -> bytes | LineTooLong | None:
        """The next complete line, TOO_LONG, or None when more data is needed."""
        index = self._next
        lines = self._lines
        if index < len(lines):
            line = lines[index]
            self._next = index + 1
            size = len(line)
            self.pending -= size + 1
            if size >= limit:  # with its LF, over the limit
                return TOO_LONG
            if size and line[-1] == 0x0D:
                return line[:-1]
            return line
        if index:
            self._lines = []
            self._next = 0
        if len(self._rest) >= limit:
            self.pending -= len(self._rest)
            self._rest = b""
            self._skipping = True
            return TOO_LONG
        return None
