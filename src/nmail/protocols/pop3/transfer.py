"""Turning a stored message into a POP3 multi-line response body.

The encoder byte-stuffs lines starting with "." (RFC 1939 section 3), cuts
the body for TOP, ends an unterminated last line and appends the ".\\r\\n"
terminator; asked to, it also turns bare LF into CRLF. It works chunk by
chunk, so a CRLF or a leading dot split across two chunks is handled, and a
large message is never held in memory whole.
"""

from __future__ import annotations

import re

# re's literal search outruns bytes.replace(b"\n.", ...) two to three times on
# mail text (CPython 3.11), and this runs over every byte sent.
LEADING_DOT = re.compile(rb"\n\.")


def encode_whole(data: bytes) -> bytes:
    """The wire form of a whole CRLF message: what MessageEncoder gives, in one step."""
    stuffed, tail = stuff_whole(data)
    return stuffed + tail


def stuff_whole(data: bytes) -> tuple[bytes, bytes]:
    """encode_whole() in two pieces, the message and its ending, for a vectored write.

    The common RETR (a file read in one piece) takes this path: one substitution
    and no copy of the message (re.sub returns `data` itself when no line starts
    with a dot).
    """
    if data[:1] == b".":
        data = b"." + data
    data = LEADING_DOT.sub(b"\n..", data)
    if not data or data[-1] == 0x0A:
        return data, b".\r\n"
    if data[-1] == 0x0D:
        return data, b"\n.\r\n"
    return data, b"\r\n.\r\n"


class MessageEncoder:
    """Encodes one message; feed() the file's chunks in order, then finish()."""

    __slots__ = (
        "_at_line_start", "_ended_cr", "_fix_bare_lf", "_in_headers", "_lines_left",
        "_partial", "_pending_cr", "done",
    )

    def __init__(self, body_lines: int | None = None, *, fix_bare_lf: bool = False) -> None:
        """body_lines: None sends everything; n sends the headers and n body lines (TOP).

        fix_bare_lf: turn bare LF into CRLF. nmail's mail store keeps every file
        CRLF (it converts foreign files when it indexes them), so the server
        leaves this off and saves two scans of every message.
        """
        self._fix_bare_lf = fix_bare_lf
        self._at_line_start = True  # the output so far ends a line (or is empty)
        self._ended_cr = False  # the output so far ends with a bare CR
        self._pending_cr = False  # the last input chunk ended with CR
        self._in_headers = True
        self._lines_left = body_lines
        self._partial = b""  # TOP only: the incomplete last line
        self.done = False  # TOP has everything it needs: stop reading

    def feed(self, chunk: bytes) -> bytes:
        """The wire bytes for the next chunk of the file."""
        if self.done or not chunk:
            return b""
        data = self._normalize(chunk) if self._fix_bare_lf else chunk
        if self._lines_left is not None:
            data = self._cut(data)
        return self._stuff(data)

    def finish(self) -> bytes:
        """The last bytes: the rest of an unfinished line, its CRLF, and ".\\r\\n"."""
        out = b""
        if self._partial and not self.done:
            # TOP: the file ended inside a line that is still wanted.
            if self._in_headers or (self._lines_left or 0) > 0:
                out = self._stuff(self._partial)
            self._partial = b""
        if self._ended_cr:
            out += b"\n"
        elif not self._at_line_start:
            out += b"\r\n"
        self.done = True
        return out + b".\r\n"

    def _normalize(self, chunk: bytes) -> bytes:
        head = b""
        if self._pending_cr and chunk[:1] == b"\n":
            # The CRLF was split between two chunks: this LF is already fine.
            head, chunk = b"\n", chunk[1:]
        self._pending_cr = chunk[-1:] == b"\r"
        lf = chunk.count(b"\n")
        if lf and lf != chunk.count(b"\r\n"):
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return head + chunk if head else chunk

    def _cut(self, data: bytes) -> bytes:
        """TOP: keep the headers, the blank line and the first n body lines."""
        data = self._partial + data
        end = data.rfind(b"\n") + 1
        self._partial = data[end:]
        kept: list[bytes] = []
        for line in data[:end].split(b"\n")[:-1]:
            if self._in_headers:
                kept.append(line)
                if line in (b"", b"\r"):
                    self._in_headers = False
            elif self._lines_left:
                kept.append(line)
                self._lines_left -= 1
            else:
                break
        if not self._in_headers and not self._lines_left:
            self.done = True
            self._partial = b""
        return b"\n".join(kept) + b"\n" if kept else b""

    def _stuff(self, data: bytes) -> bytes:
        if not data:
            return data
        if self._at_line_start and data[0] == 0x2E:
            data = b"." + data
        data = LEADING_DOT.sub(b"\n..", data)
        last = data[-1]
        self._at_line_start = last == 0x0A
        self._ended_cr = last == 0x0D
        return data
