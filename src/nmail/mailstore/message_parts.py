"""Cutting a stored message into its header, its body, or one MIME part, as bytes.

IMAP numbers parts like BODY[1.2] (RFC 3501 6.4.5): the parts of a
multipart are 1, 2, ...; a message/rfc822 part's own parts continue the
number; part 1 of a message that is not multipart is its body. A part
comes back exactly as stored (its transfer encoding untouched), cut at the
boundaries, never parsed and written out again. Sizes are bounded by the
message, which the store already holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nmail.mime.params import parse_params

_CONTENT_TYPE = re.compile(rb"(?im)^content-type:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)")
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Part:
    header: bytes  # the part's MIME header block, its blank line included
    body: bytes


def split_header(data: bytes) -> Part:
    """The header block (with its blank line) and the body."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = data.find(sep)
        if at >= 0:
            return Part(data[: at + len(sep)], data[at + len(sep):])
    return Part(data, b"")


def find_part(data: bytes, section: str) -> Part | None:
    """The part `section` ("1", "2.1") of a message; None when there is none.

    ValueError when `section` is not dot-separated positive numbers.
    """
    numbers = section.split(".")
    if not section or len(numbers) > MAX_DEPTH or not all(
            n.isascii() and n.isdigit() and not n.startswith("0") for n in numbers):
        raise ValueError(f"bad part number {section!r}")
    current = split_header(data)
    for number in (int(n) for n in numbers):
        kind, boundary = _content_type(current.header)
        if kind == "message/rfc822":
            current = split_header(current.body)
            kind, boundary = _content_type(current.header)
        if not kind.startswith("multipart/") or not boundary:
            if number != 1:
                return None
            current = Part(current.header, current.body)
            continue
        parts = _children(current.body, boundary)
        if number > len(parts):
            return None
        current = split_header(parts[number - 1])
    return current


def _content_type(header: bytes) -> tuple[str, str]:
    found = _CONTENT_TYPE.search(header)
    if found is None:
        return "text/plain", ""
    params = parse_params(found.group(1).decode("latin-1"))
    return params.value.lower(), params.params.get("boundary", "")


def _children(body: bytes, boundary: str) -> list[bytes]:
    """The parts between `--boundary` lines, without the line breaks around them."""
    marker = b"--" + boundary.encode("latin-1")
    parts: list[bytes] = []
    start: int | None = None
    position = 0
    while True:
        at = body.find(marker, position)
        if at < 0:
            break
        line_start = at == 0 or body[at - 1:at] == b"\n"
        end_of_line = body.find(b"\n", at)
        position = at + len(marker)
        if not line_start:
            continue
        if start is not None:
            cut = at - 2 if body[at - 2:at] == b"\r\n" else at - 1
            parts.append(body[start:max(cut, start)])
        if body[position:position + 2] == b"--":
            return parts
        start = len(body) if end_of_line < 0 else end_of_line + 1
    return parts
