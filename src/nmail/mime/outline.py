"""A large message cut down to what the index summary reads, from its pieces.

`summarize` (summary.py) reads the header block, the first text part for a
preview (64 KiB of plain text, 256 KiB of HTML at most) and, for
multipart mail, every part's header to tell attachments. A message spooled
to a file (past 1 MiB, nmail/message_source.py) is not read whole for that:
`outline` keeps its first `keep` bytes as they are and, after them, only
the lines that may be MIME delimiters (those starting with "--") with the
header block that follows each one. Every delimiter line stays, at a line
start, so the boundary scan (parts.py) finds the same parts with the same
headers; only part bodies past `keep` are left out. So the summary of the
outline is the summary of the message (the preview of a text part that
starts past `keep` aside), in memory bounded by `keep` + `limit`.
"""

from __future__ import annotations

from collections.abc import Iterable

KEEP = 256 * 1024  # bytes kept whole from the start
LIMIT = 1 << 20  # bytes of delimiter lines and part headers kept after that
_MAX_LINE = 64 * 1024  # a longer "line" past `keep` is body, dropped
_MAX_BLOCK = 16 * 1024  # bytes of one part header block kept


def outline(chunks: Iterable[bytes], keep: int = KEEP, limit: int = LIMIT) -> bytes:
    """The message of `chunks` with part bodies past `keep` bytes left out."""
    out = bytearray()
    carry = b""
    in_block = False  # inside the header block after a delimiter line
    block = 0
    kept_after = 0
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        if len(out) < keep:
            room = keep - len(out)
            if len(data) <= room:
                out += data
                continue
            # Keep whole lines: up to the first line end past `keep`.
            end = data.find(b"\n", room) + 1
            if end == 0:
                out += data
                continue
            out += data[:end]
            data = data[end:]
        last = data.rfind(b"\n") + 1
        carry = data[last:] if len(data) - last <= _MAX_LINE else b""
        pos = 0
        while pos < last and kept_after < limit:
            if in_block:
                eol = data.find(b"\n", pos) + 1
                line = data[pos:eol]
                block += len(line)
                in_block = line not in (b"\r\n", b"\n") and block < _MAX_BLOCK
            elif data.startswith(b"--", pos):
                eol = data.find(b"\n", pos) + 1
                line = data[pos:eol]
                in_block, block = True, 0
            else:
                start = data.find(b"\n--", pos, last)
                if start < 0:
                    break
                pos = start + 1
                continue
            out += line
            kept_after += len(line)
            pos = eol
    if carry and (len(out) < keep or in_block or carry.startswith(b"--")):
        out += carry
    return bytes(out)
