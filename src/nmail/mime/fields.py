"""The header block of a message or a MIME part, read straight from the bytes.

Only the fields asked for are kept (first occurrence wins), raw and still
folded, so the hot path never builds an `email` object tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024  # fields past this point of a header block are not read

# Every line of a header block: a field with its continuation lines (name,
# value), or anything else (third group) -- which ends the block unless it is
# empty or a stray continuation. Possessive quantifiers, as nothing here needs
# to backtrack: a little faster, and this runs on every header line.
_LINE = re.compile(rb"^(?:([!-9;-~]++)[ \t]*+:[ \t]*+(.*+(?:\n[ \t].*+)*+)|(.*+))", re.MULTILINE)
# A line `_fields_if_regular` refuses: neither a field, a continuation, nor white
# space, found after its "\n" (a literal start is searched for at C speed: a
# third of the instructions of "^" with re.MULTILINE).
_IRREGULAR = re.compile(rb"\n(?![!-9;-~]++[ \t]*+:|[ \t]|[ \t\r\x0b\x0c]*+(?:\n|\Z))")


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    """Wanted fields (lowercase name -> raw value) and where the body starts."""

    fields: dict[bytes, bytes]
    body_start: int


def read_header_block(
    raw: bytes, wanted: frozenset[bytes], start: int = 0, end: int | None = None
) -> HeaderBlock:
    """Read the header block of `raw[start:end]`: fields in `wanted` and the body offset.

    The block ends at the first empty line (CRLF or LF), or at the first line
    that is neither a field nor a continuation (that line starts the body, as
    in the standard library's parser). An mbox "From " line at the top is skipped.
    """
    end = len(raw) if end is None else end
    limit = min(end, start + MAX_HEADER_BYTES)
    if start == 0 and raw.startswith(b"From "):
        newline = raw.find(b"\n", start, limit)
        start = limit if newline < 0 else newline + 1
    if raw.startswith(b"\n", start, end):
        return HeaderBlock({}, start + 1)
    if raw.startswith(b"\r\n", start, end):
        return HeaderBlock({}, start + 2)
    # The blank line is looked for everywhere (bytes.find is cheap); only the
    # fields within MAX_HEADER_BYTES are read.
    crlf = raw.find(b"\n\r\n", start, end)
    lf = raw.find(b"\n\n", start, crlf + 1 if crlf >= 0 else end)
    if lf >= 0:
        block_end, body_start = lf + 1, lf + 2
    elif crlf >= 0:
        block_end, body_start = crlf + 1, crlf + 3
    else:
        block_end = body_start = end
    if block_end > limit:
        newline = raw.rfind(b"\n", start, limit)
        block_end = limit if newline < 0 else newline + 1
    fields = _fields_if_regular(raw[start:block_end], wanted)
    if fields is not None:
        return HeaderBlock(fields, body_start)
    return _read_irregular(raw, wanted, start, block_end, body_start)


def _fields_if_regular(block: bytes, wanted: frozenset[bytes]) -> dict[bytes, bytes] | None:
    """Wanted fields of a block where every line is a field; None if some line is not."""
    fields: dict[bytes, bytes] = {}
    for name, value, other in _LINE.findall(block):
        if name:
            name = name.lower()
            if name in wanted and name not in fields:
                fields[name] = value.rstrip(b"\r\t ")
        elif other.strip() and other[:1] not in b" \t":
            return None
    return fields


def _read_irregular(
    raw: bytes, wanted: frozenset[bytes], start: int, block_end: int, body_start: int
) -> HeaderBlock:
    """Line by line, for a block with a line that is not a field (the body starts there)."""
    fields: dict[bytes, bytes] = {}
    current: bytes | None = None  # name of the field whose continuation lines follow
    pieces: list[bytes] = []
    offset = start
    for line in raw[start:block_end].split(b"\n"):
        line_start = offset
        offset += len(line) + 1
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                pieces.append(line.rstrip(b"\r"))
            continue
        if current is not None:
            fields[current] = b"\n".join(pieces)
            current = None
        colon = line.find(b":")
        name = line[:colon].rstrip().lower() if colon > 0 else b""
        if not name or b" " in name or b"\t" in name:
            if not line.rstrip(b"\r"):
                continue  # the empty last piece after the final newline
            # Not a header line: the body starts here.
            return HeaderBlock(fields, line_start)
        if name in wanted and name not in fields:
            current = name
            pieces = [line[colon + 1:].rstrip(b"\r").lstrip(b" \t")]
    if current is not None:
        fields[current] = b"\n".join(pieces)
    return HeaderBlock(fields, body_start)


def field_pattern(wanted: frozenset[bytes]) -> re.Pattern[bytes]:
    """The lines of the `wanted` fields, for `read_usual_block`: (name, raw value)."""
    names = b"|".join(re.escape(name) for name in sorted(wanted, key=len, reverse=True))
    return re.compile(rb"\n(" + names + rb")[ \t]*+:[ \t]*+(.*+(?:\n[ \t].*+)*+)", re.IGNORECASE)


def read_usual_block(
    raw: bytes, pattern: re.Pattern[bytes]
) -> tuple[dict[bytes, bytes], int] | None:
    """`read_header_block(raw, wanted)` for the usual message, in two regex scans; else None.

    The usual message: CRLF lines, a blank line within MAX_HEADER_BYTES, every
    header line a field or a continuation, no mbox "From " line. `pattern` is
    `field_pattern(wanted)`. Only the wanted fields cost Python work, where
    read_header_block's loop handles every line (Received:, DKIM-Signature:...).
    """
    if raw.startswith((b"From ", b"\n", b"\r\n")):
        return None
    crlf = raw.find(b"\n\r\n", 0, MAX_HEADER_BYTES)
    if crlf < 0 or raw.find(b"\n\n", 0, crlf + 1) >= 0:
        return None
    block = b"\n" + raw[:crlf + 1]  # every line after a "\n", for the patterns
    if _IRREGULAR.search(block) is not None:
        return None
    fields: dict[bytes, bytes] = {}
    for name, value in pattern.findall(block):
        name = name.lower()
        if name not in fields:
            fields[name] = value.rstrip(b"\r\t ")
    return fields, crlf + 3
