"""The parts of a stored message found in its file, without reading the file whole.

The webmail's forward (inline, with the original's attachments; or as an
attachment, of a message attached inside another) and its drafts (saved,
reopened, sent) read the original whole and decoded the attachments carried
into bytes: a message with a 20 MiB attachment cost its 27 MiB of base64, then
20 MiB decoded, in the web process at each step (an inline forward grew its
peak RSS by 108 MiB, reopening the draft by 81; now 4.6 and 2.0 MiB,
tests/test_web_forward_memory.py). Here the file is read once,
1 MiB at a time, into a skeleton: the header block, every line that may be a
MIME delimiter ("--...") with the part header block after it, and, for each
run of body lines dropped, one byte ("Z") and the run's own line break. A map
of (skeleton offset, file offset) pairs takes every offset the boundary scan
(mime/parts.py) finds in the skeleton back to the file: a part's body starts
right after its header block (the filler starts where the run did) and ends
before the line break of the delimiter after it (kept, so mapped exactly). So
the parts are those `read_view` numbers in the whole message, with file
offsets, and the skeleton of a message with a 20 MiB attachment is a few KiB.
A part is then decoded a piece at a time into a file (`copy_decoded`) or a
response (`iter_decoded`), and the read view takes only the text parts' bytes
from the file (`file_view`). A message attached inside another is a `Span` of
the outer file when its part came as it is (`attached_span`, RFC 2046 asks
that of message/rfc822): the skeleton of [start, end) keeps the file's
offsets, so the webmail's views of it read the outer file in place instead of
copying the attached message (27 MiB with a 20 MiB attachment) into a spool
file at each click.
"""

from __future__ import annotations

import binascii
import os
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import IO

from nmail.mime.fields import read_header_block
from nmail.mime.parts import PART_FIELDS, Part, iter_parts
from nmail.mime.preview import transfer_decode
from nmail.mime.reading import (
    ATTACHED_TYPES,
    MAX_BODY_BYTES,
    AttachmentInfo,
    MessageView,
    attachment_info,
    is_attached_path,
    read_view,
)

PIECE = 1 << 20  # bytes read at once
_MAX_LINE = 64 * 1024  # a longer line is body, dropped
_MAX_HEADER = 1 << 20  # of the message's own header block
_MAX_BLOCK = 16 * 1024  # of one part's header block
_MAX_SKELETON = 4 << 20  # past this the rest of the file is one dropped run
_MAX_TEXT = MAX_BODY_BYTES * 3 // 2  # encoded bytes of one text part read for the view
_NOT_BASE64 = bytes(set(range(256)) - set(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"))
_FIELDS = frozenset({*PART_FIELDS})


@dataclass(frozen=True, slots=True)
class Skeleton:
    """A message's lines that shape its parts, and where each piece of them is in the file."""

    data: bytes
    marks: tuple[tuple[int, int], ...]  # (offset in data, offset in the file), ascending
    size: int  # of the file

    def file_offset(self, offset: int) -> int:
        at = bisect_right(self.marks, (offset, self.size + 1)) - 1
        start, file_start = self.marks[max(0, at)]
        return file_start + offset - start


class _Builder:
    __slots__ = ("base", "buf", "eof", "file", "limit", "marks", "next_file", "out", "pos")

    def __init__(self, file: IO[bytes], start: int, end: int) -> None:
        self.file = file
        self.limit = end  # the file offset the message ends at
        self.buf = b""
        self.base = start  # file offset of buf[0]
        self.pos = 0
        self.eof = False
        self.out = bytearray()
        self.marks: list[tuple[int, int]] = []
        self.next_file = -1  # the file offset a contiguous keep would start at

    def fill(self, keep_before: int = 0) -> bool:
        """Read one more piece, keeping buf from pos - keep_before; False at the end."""
        at = self.base + len(self.buf)
        if self.eof or at >= self.limit:
            self.eof = True
            return False
        piece = os.pread(self.file.fileno(), min(PIECE, self.limit - at), at)
        if not piece:
            self.eof = True
            return False
        cut = max(0, self.pos - keep_before)
        self.buf = self.buf[cut:] + piece
        self.base += cut
        self.pos -= cut
        return True

    def keep(self, data: bytes, file_offset: int) -> None:
        if file_offset != self.next_file:
            self.marks.append((len(self.out), file_offset))
        self.out += data
        self.next_file = file_offset + len(data)

    def line(self) -> bytes | None:
        """The line at pos with its line break (the rest at the end); None when longer
        than _MAX_LINE."""
        end = self.buf.find(b"\n", self.pos)
        while end < 0 and len(self.buf) - self.pos <= _MAX_LINE and self.fill():
            end = self.buf.find(b"\n", self.pos)
        if end < 0:
            return self.buf[self.pos:] if self.eof and len(self.buf) - self.pos <= _MAX_LINE \
                else None
        return self.buf[self.pos:end + 1] if end + 1 - self.pos <= _MAX_LINE else None

    def kept_lines(self, limit: int) -> bool:
        """Keep lines up to a blank one (kept) or `limit` bytes; False when one is too long."""
        used = 0
        while used < limit:
            line = self.line()
            if line is None:
                return False
            if not line:
                return True
            self.keep(line, self.base + self.pos)
            self.pos += len(line)
            used += len(line)
            if line in (b"\r\n", b"\n"):
                return True
        return True

    def skip_line(self) -> None:
        """Move pos to the line break that ends the line it is in (or to the end)."""
        while (end := self.buf.find(b"\n", self.pos)) < 0:
            self.pos = len(self.buf)
            if not self.fill(keep_before=1):
                return
        self.pos = end

    def dropped_run(self, start: int | None = None) -> bool:
        """Drop body lines from pos (a line start, or the run's `start` before it) up to
        one starting with "--" (True) or the end (False)."""
        if start is None:
            start = self.base + self.pos
            while len(self.buf) - self.pos < 2 and self.fill():
                pass
            if self.buf.startswith(b"--", self.pos):
                return True
        while (found := self.buf.find(b"\n--", self.pos)) < 0:
            self.pos = max(self.pos, len(self.buf) - 3)
            if not self.fill(keep_before=1):
                self._end_run(start, self.base + len(self.buf), True)
                self.pos = len(self.buf)
                return False
        crlf = found > 0 and self.base + found - 1 >= start and self.buf[found - 1] == 0x0D
        line_break = self.base + found - (1 if crlf else 0)
        self._end_run(start, line_break, False)
        self.keep(b"\r\n" if crlf else b"\n", line_break)
        self.pos = found + 1
        return True

    def _end_run(self, start: int, body_end: int, at_end: bool) -> None:
        if at_end and body_end > start and self.buf.endswith(b"\n"):
            crlf = self.buf.endswith(b"\r\n") and body_end - 2 >= start
            body_end -= 2 if crlf else 1
            if body_end > start:
                self.keep(b"Z", start)
                self.next_file = -1
            self.keep(b"\r\n" if crlf else b"\n", body_end)
            return
        if body_end > start:
            self.keep(b"Z", start)
            self.next_file = -1


def skeleton(file: IO[bytes], start: int = 0, end: int = -1) -> Skeleton:
    """The skeleton of the message in `file` (read with pread: its position is kept), or
    of the one in its bytes [start, end) (offsets stay the file's)."""
    built = _Builder(file, start, end if end >= 0 else 1 << 62)
    built.fill()
    if built.kept_lines(_MAX_HEADER):
        run: int | None = None
        while len(built.out) < _MAX_SKELETON and built.dropped_run(run):
            run = None
            if not built.kept_lines(_MAX_BLOCK):  # a line too long to be a part header:
                run = built.base + built.pos  # body, from its start
                built.skip_line()
    while built.fill():  # what is left is body
        built.pos = len(built.buf)
    size = built.base + len(built.buf)
    if built.next_file != size:
        rest = built.next_file if built.next_file >= 0 else size
        if rest < size:
            built.keep(b"Z", rest)
    built.marks.append((len(built.out), size))
    return Skeleton(bytes(built.out), tuple(built.marks), size)


def file_parts(shape: Skeleton) -> list[Part]:
    """The leaf parts (numbered as `read_view` numbers them) with offsets in the file."""
    block = read_header_block(shape.data, _FIELDS)
    return [replace(part, start=shape.file_offset(part.start), end=shape.file_offset(part.end))
            for part in iter_parts(shape.data, block.fields, block.body_start, len(shape.data))]


def read_range(file: IO[bytes], start: int, end: int, piece: int = PIECE) -> Iterator[bytes]:
    """The bytes of file[start:end] in pieces."""
    offset = start
    while offset < end:
        data = os.pread(file.fileno(), min(piece, end - offset), offset)
        if not data:
            return
        offset += len(data)
        yield data


def iter_decoded(file: IO[bytes], part: Part, piece: int = 0) -> Iterator[bytes]:
    """`part`'s body, its transfer encoding undone, a piece at a time (read `piece`
    bytes, or PIECE, at a time): the same bytes `transfer_decode` gives for the whole
    body."""
    carry = b""
    for data in read_range(file, part.start, part.end, piece or PIECE):
        if part.transfer_encoding == "base64":
            compact = carry + data.translate(None, _NOT_BASE64)
            whole = len(compact) // 4 * 4
            decoded, carry = binascii.a2b_base64(compact[:whole]), compact[whole:]
        elif part.transfer_encoding == "quoted-printable":
            data = carry + data
            cut = data.rfind(b"\n") + 1
            decoded, carry = binascii.a2b_qp(data[:cut]), data[cut:]
        else:
            decoded = data
        if decoded:
            yield decoded
    if carry:
        tail = transfer_decode(carry, part.transfer_encoding)
        if tail:
            yield tail


def copy_decoded(file: IO[bytes], part: Part, out: IO[bytes]) -> int:
    """Write `part`'s body, its transfer encoding undone, into `out`; the bytes written."""
    written = 0
    for decoded in iter_decoded(file, part):
        out.write(decoded)
        written += len(decoded)
    out.flush()
    return written


def file_view(file: IO[bytes], start: int = 0, end: int = -1
              ) -> tuple[MessageView, list[Part]]:
    """`read_view` of the message in `file`, and its parts with file offsets: only the
    text parts' bodies are read (the first _MAX_TEXT bytes of each), every other part
    is left in the file (attachment sizes are estimated from the file's offsets).
    [start, end): the message's bytes in the file, as for `skeleton`."""
    shape = skeleton(file, start, end)
    block = read_header_block(shape.data, _FIELDS)
    pieces: list[bytes] = []
    done = 0
    parts: list[Part] = []  # with file offsets
    for part in iter_parts(shape.data, block.fields, block.body_start, len(shape.data)):
        start, end = shape.file_offset(part.start), shape.file_offset(part.end)
        parts.append(replace(part, start=start, end=end))
        if part.is_attachment or part.content_type not in ("text/plain", "text/html"):
            continue
        pieces += [shape.data[done:part.start],
                   b"".join(read_range(file, start, min(end, start + _MAX_TEXT)))]
        done = part.end
    pieces.append(shape.data[done:])
    view = read_view(b"".join(pieces))
    sizes = {a.number: attachment_info(a.number, parts[a.number]).size
             for a in view.attachments if a.number < len(parts)}
    return replace(view, attachments=[replace(a, size=sizes.get(a.number, a.size))
                                      for a in view.attachments]), parts


def decoded_parts(file: IO[bytes], numbers: tuple[int, ...], new_file: Callable[[], IO[bytes]]
                  ) -> list[tuple[AttachmentInfo, IO[bytes]]]:
    """Parts `numbers` (as `part_contents` numbers them) each decoded into a file from
    `new_file` (the caller closes them), in that order; a number with no part is left
    out."""
    parts = file_parts(skeleton(file))
    found: list[tuple[AttachmentInfo, IO[bytes]]] = []
    for number in numbers:
        if 0 <= number < len(parts):
            out = new_file()
            found.append((replace(attachment_info(number, parts[number]),
                                  size=copy_decoded(file, parts[number], out)), out))
    return found


def attached_file(file: IO[bytes], path: str, new_file: Callable[[], IO[bytes]]
                  ) -> IO[bytes] | None:
    """`attached_message` from a file: the message attached at `path`, in a file of its
    own from `new_file` (the caller closes it); None if there is none. The steps are
    `attached_span`'s; a message found in place is copied out."""
    span = attached_span(whole_file(file), path, new_file)
    if span is None or span.file is not file:
        return None if span is None else span.file  # decoded into a file of its own
    out = new_file()
    for data in read_range(file, span.start, span.end):
        out.write(data)
    out.flush()
    return out


@dataclass(frozen=True, slots=True)
class Span:
    """A message in a file: all of it, or the bytes [start, end) of a part holding one."""

    file: IO[bytes]
    start: int
    end: int


def whole_file(file: IO[bytes]) -> Span:
    return Span(file, 0, os.fstat(file.fileno()).st_size)


def attached_span(outer: Span, path: str, new_file: Callable[[], IO[bytes]]) -> Span | None:
    """The message attached at `path` in `outer` (`attached_message`'s steps): where a
    step's part is not transfer-encoded (as RFC 2046 asks of message/rfc822), its bytes
    in the file it is in; otherwise decoded into a file from `new_file`. The caller
    closes the returned span's file when it is not `outer.file`. None if there is none."""
    if not is_attached_path(path):
        return None
    current = outer
    for step in path.split("."):
        number = int(step)
        parts = file_parts(skeleton(current.file, current.start, current.end))
        part = parts[number] if number < len(parts) else None
        found: Span | None = None
        if part is not None and part.content_type in ATTACHED_TYPES:
            if part.transfer_encoding in ("base64", "quoted-printable"):
                out = new_file()
                found = Span(out, 0, copy_decoded(current.file, part, out))
            else:
                found = Span(current.file, part.start, max(part.start, part.end))
        if current.file is not outer.file and (found is None or found.file is not current.file):
            current.file.close()
        if found is None:
            return None
        current = found
    return current
