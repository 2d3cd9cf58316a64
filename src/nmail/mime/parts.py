"""The leaf parts of a MIME message, found by scanning for boundaries in the bytes.

Bounded on purpose: at most `MAX_PARTS` parts and `MAX_DEPTH` levels of
nesting, each level one pass over its own region (see `_Delimiters`). Part
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
PART_FIELDS = frozenset({
    b"content-type", b"content-transfer-encoding", b"content-disposition", b"content-id",
})
_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;"]+))""", re.IGNORECASE)
_MAX_BOUNDARY = 200  # RFC 2046 allows 70; be lenient, but not unbounded
# What follows `--boundary` on a delimiter line: "--" closes; otherwise only
# spaces up to the line end.
_DELIMITER_END = re.compile(rb"(?:(--)|[ \t]*(?:\r?\n|\r?\Z))")
_MAX_NEAR_MISSES = 16  # lines that only start like a delimiter, before a regex takes over
# Machine-readable parts of reports: not something a user attached.
_REPORT_PARTS = frozenset({
    "message/delivery-status", "message/global-delivery-status",
    "message/disposition-notification", "message/feedback-report", "text/rfc822-headers",
})

# What a missing header reads as; shared, as nothing changes a HeaderParams.
_NO_PARAMS = HeaderParams("", {})
_DEFAULTS = {kind: HeaderParams(kind, {}) for kind in ("text/plain", "message/rfc822")}


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
    content_id: str = ""  # Content-ID without angle brackets ("" when none)


@dataclass(slots=True)
class _Budget:
    parts: int = MAX_PARTS


def iter_parts(raw: bytes, fields: dict[bytes, bytes], start: int, end: int) -> Iterator[Part]:
    """Leaf parts of the entity with header `fields` and body `raw[start:end]`, in order.

    `fields` must hold the entity's Content-Type, Content-Transfer-Encoding and
    Content-Disposition when present (see `PART_FIELDS`).
    """
    return _walk(raw, fields, start, end, 0, "", 0, "text/plain", _Budget())


def transfer_encoding(fields: dict[bytes, bytes]) -> str:
    """The entity's Content-Transfer-Encoding, lowercased ("" when none)."""
    return fields.get(b"content-transfer-encoding", b"").strip().lower().decode("latin-1")


def _walk(raw: bytes, fields: dict[bytes, bytes], start: int, end: int, depth: int,
          parent: str, index: int, default_type: str, budget: _Budget) -> Iterator[Part]:
    raw_type = fields.get(b"content-type")
    content_type = parse_params(raw_type) if raw_type else _DEFAULTS[default_type]
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
    disposition = parse_params(raw_disposition) if raw_disposition else _NO_PARAMS
    filename = disposition.get("filename") or content_type.get("name")
    yield Part(
        content_type=kind,
        charset=content_type.get("charset"),
        transfer_encoding=transfer_encoding(fields),
        filename=filename,
        is_attachment=_is_attachment(kind, disposition.value, filename, parent, index),
        start=start,
        end=end,
        content_id=_content_id(fields.get(b"content-id")),
    )


def _content_id(raw: bytes | None) -> str:
    """A Content-ID's value without brackets or spaces ("" when none or unreadable)."""
    if not raw:
        return ""
    text = raw[:998].decode("latin-1").strip()
    return "".join(text.removeprefix("<").removesuffix(">").split())


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
    """Body spans of the parts between `--boundary` lines in `raw[start:end]`."""
    if not boundary:
        return []
    delimiters = _Delimiters(raw, boundary, end)
    spans: list[tuple[int, int]] = []
    part_start = -1
    position = start
    first = delimiters.at(start)  # no preamble
    if first is not None:
        part_start, closing = first
        if closing:
            return []
        position = _before_newline(raw, part_start)
    while len(spans) < limit:
        found = delimiters.search(position)
        if found is None:
            break
        stop, after, closing = found
        if part_start >= 0:
            # The line break before a delimiter belongs to it.
            if stop > part_start and raw[stop - 1] == 0x0D:
                stop -= 1
            spans.append((part_start, max(part_start, stop)))
        if closing:
            return spans
        part_start = after
        position = _before_newline(raw, part_start)
    if part_start >= 0 and len(spans) < limit:
        spans.append((part_start, end))  # the closing delimiter never came
    return spans


class _Delimiters:
    """Finds the delimiter lines of one boundary in `raw[:end]`.

    bytes.find looks for `--boundary`, as a regular expression made for each
    boundary (boundaries are unique to a message) would cost far more to
    compile than the whole scan. Should many lines merely start with the
    delimiter (a longer boundary, quoted text), such an expression takes over
    all the same, so that they cost no Python work.
    """

    __slots__ = ("end", "line", "near_misses", "pattern", "raw")

    def __init__(self, raw: bytes, boundary: bytes, end: int) -> None:
        self.raw = raw
        self.end = end
        self.line = b"\n--" + boundary
        self.near_misses = 0
        self.pattern: re.Pattern[bytes] | None = None

    def at(self, start: int) -> tuple[int, bool] | None:
        """(end, closing) of a delimiter right at `start`, without its line break."""
        dashes = self.line[1:]
        if not self.raw.startswith(dashes, start, self.end):
            return None
        found = _DELIMITER_END.match(self.raw, start + len(dashes), self.end)
        return None if found is None else (found.end(), found.group(1) is not None)

    def search(self, position: int) -> tuple[int, int, bool] | None:
        """(start, end, closing) of the first delimiter with its line break from `position`."""
        raw, end = self.raw, self.end
        while self.pattern is None:
            start = raw.find(self.line, position, end)
            if start < 0:
                return None
            found = _DELIMITER_END.match(raw, start + len(self.line), end)
            if found is not None:
                return start, found.end(), found.group(1) is not None
            self.near_misses += 1
            if self.near_misses >= _MAX_NEAR_MISSES:
                self.pattern = re.compile(re.escape(self.line) + _DELIMITER_END.pattern)
            position = start + 1
        found = self.pattern.search(raw, position, end)
        if found is None:
            return None
        return found.start(), found.end(), found.group(1) is not None


def _before_newline(raw: bytes, offset: int) -> int:
    """Back up over the newline that ended a delimiter line: the next search needs it."""
    return offset - 1 if raw[offset - 1] == 0x0A else offset
