"""The leaf parts of a MIME message, found by scanning for boundaries in the bytes.

Bounded on purpose: at most `MAX_PARTS` parts and `MAX_DEPTH` levels of
nesting, each level one regular-expression pass over its own region. Part
bodies are never copied or decoded here; callers get offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from nmail.mime.fields import read_header_block
from nmail.mime.params import HeaderParams, parse_params

MAX_PARTS = 256
MAX_DEPTH = 16
PART_FIELDS = frozenset({b"content-type", b"content-transfer-encoding", b"content-disposition"})
_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;"]+))""", re.IGNORECASE)
_MAX_BOUNDARY = 200  # RFC 2046 allows 70; be lenient, but not unbounded
# Machine-readable parts of reports: not something a user attached.
_REPORT_PARTS = frozenset({
    "message/delivery-status", "message/global-delivery-status",
    "message/disposition-notification", "message/feedback-report", "text/rfc822-headers",
})


@dataclass(frozen=True, slots=True)
class Part:
    """One leaf part: its type, how its body is encoded, and where the body is."""

    content_type: str  # lowercased "type/subtype"
    charset: str  # as declared ("" when none)
    transfer_encoding: str  # lowercased Content-Transfer-Encoding ("" when none)
    filename: str  # decoded, "" when none
    is_attachment: bool
    start: int  # body offsets in the raw message
    end: int


@dataclass(slots=True)
class _Budget:
    parts: int = MAX_PARTS


def iter_parts(raw: bytes, fields: dict[bytes, bytes], start: int, end: int) -> Iterator[Part]:
    """Leaf parts of the entity with header `fields` and body `raw[start:end]`, in order.

    `fields` must hold the entity's Content-Type, Content-Transfer-Encoding and
    Content-Disposition when present (see `PART_FIELDS`).
    """
    return _walk(raw, fields, start, end, 0, "", 0, "text/plain", _Budget())


def _walk(raw: bytes, fields: dict[bytes, bytes], start: int, end: int, depth: int,
          parent: str, index: int, default_type: str, budget: _Budget) -> Iterator[Part]:
    raw_type = fields.get(b"content-type")
    content_type = parse_params(raw_type) if raw_type else HeaderParams(default_type, {})
    kind = content_type.value if "/" in content_type.value else "text/plain"
    if kind.startswith("multipart/") and depth < MAX_DEPTH and raw_type:
        spans = _split(raw, _boundary(raw_type), start, end, budget.parts)
        if spans:
            subtype = kind[len("multipart/"):]
            child_default = "message/rfc822" if subtype == "digest" else "text/plain"
            for number, (part_start, part_end) in enumerate(spans):
                if budget.parts <= 0:
                    return
                budget.parts -= 1
                block = read_header_block(raw, PART_FIELDS, part_start, part_end)
                yield from _walk(raw, block.fields, block.body_start, part_end, depth + 1,
                                 subtype, number, child_default, budget)
            return
        kind = "text/plain"  # a multipart without parts: show its body as text
    raw_disposition = fields.get(b"content-disposition")
    disposition = parse_params(raw_disposition) if raw_disposition else HeaderParams("", {})
    filename = disposition.get("filename") or content_type.get("name")
    encoding = fields.get(b"content-transfer-encoding", b"").strip().lower()
    yield Part(
        content_type=kind,
        charset=content_type.get("charset"),
        transfer_encoding=encoding.decode("latin-1"),
        filename=filename,
        is_attachment=_is_attachment(kind, disposition.value, filename, parent, index),
        start=start,
        end=end,
    )


def _is_attachment(kind: str, disposition: str, filename: str, parent: str, index: int) -> bool:
    """Whether a user would call this part an attachment (the paper clip in a list)."""
    if disposition == "attachment":
        return True
    if parent == "related" and index > 0:
        return False  # an image embedded in the HTML body
    if (parent == "signed" and index > 0) or (parent == "encrypted" and index == 0):
        return False  # a signature, or the PGP/MIME version part
    if kind in _REPORT_PARTS:
        return False
    if filename:
        return True
    return not kind.startswith(("text/", "multipart/"))


def _boundary(raw_type: bytes) -> bytes:
    """The boundary parameter, read from the raw bytes (never decoded as a word)."""
    match = _BOUNDARY.search(raw_type)
    if match is None:
        return b""
    boundary = match.group(1) if match.group(1) is not None else match.group(2)
    return boundary.rstrip(b" \t") if len(boundary) <= _MAX_BOUNDARY else b""


def _split(raw: bytes, boundary: bytes, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Body spans of the parts between `--boundary` lines in `raw[start:end]`.

    A regular expression does the scanning, so lines that merely start with
    the delimiter (a longer boundary, quoted text) cost no Python work.
    """
    if not boundary:
        return []
    # After the boundary: "--" closes; otherwise only spaces up to the line end.
    delimiter = b"--" + re.escape(boundary) + rb"(?:(--)|[ \t]*(?:\r?\n|\r?\Z))"
    spans: list[tuple[int, int]] = []
    part_start = -1
    position = start
    found = re.compile(delimiter).match(raw, start, end)  # no preamble
    if found is not None:
        if found.group(1):
            return []
        part_start = found.end()
        position = _before_newline(raw, part_start)
    following = re.compile(b"\n" + delimiter)
    while len(spans) < limit:
        found = following.search(raw, position, end)
        if found is None:
            break
        if part_start >= 0:
            stop = found.start()  # the line break before a delimiter belongs to it
            if stop > part_start and raw[stop - 1] == 0x0D:
                stop -= 1
            spans.append((part_start, max(part_start, stop)))
        if found.group(1):
            return spans
        part_start = found.end()
        position = _before_newline(raw, part_start)
    if part_start >= 0 and len(spans) < limit:
        spans.append((part_start, end))  # the closing delimiter never came
    return spans


def _before_newline(raw: bytes, offset: int) -> int:
    """Back up over the newline that ended a delimiter line: the next search needs it."""
    return offset - 1 if raw[offset - 1] == 0x0A else offset
