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
    """

    __slots__ = ("_buffer", "_pos", "_skipping")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0
        self._skipping = False

    def feed(self, data: bytes) -> None:
        """Append bytes received from the client."""
        self._buffer += data

    def discard(self) -> None:
        """Forget everything buffered (STLS: nothing sent in plaintext may survive)."""
        self._buffer.clear()
        self._pos = 0
        self._skipping = False

    @property
    def pending(self) -> int:
        """How many buffered bytes are not yet handed out."""
        return len(self._buffer) - self._pos

    def next_line(self, limit: int = COMMAND_LINE_LIMIT) -> bytes | LineTooLong | None:
        """The next complete line, TOO_LONG, or None when more data is needed."""
        buffer = self._buffer
        if self._skipping:
            end = buffer.find(b"\n", self._pos)
            if end < 0:
                self.discard()
                self._skipping = True
                return None
            self._pos = end + 1
            self._skipping = False
        start = self._pos
        end = buffer.find(b"\n", start)
        if end < 0:
            if len(buffer) - start >= limit:
                self.discard()
                self._skipping = True
                return TOO_LONG
            self._compact()
            return None
        after = end + 1
        if after - start > limit:
            self._pos = after
            self._compact()
            return TOO_LONG
        line = bytes(buffer[start : end - 1 if end > start and buffer[end - 1] == 0x0D else end])
        if after == len(buffer):
            buffer.clear()  # the usual case: one command read, one handled
            self._pos = 0
        else:
            self._pos = after
            if after >= 65536:
                self._compact()
        return line

    def _compact(self) -> None:
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
