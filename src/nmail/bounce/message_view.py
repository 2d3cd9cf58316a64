"""A returned message as the analysis reads it: header fields, parts, texts.

Built on `nmail.mime`'s bounded readers (header blocks read from the
bytes, a boundary scanner with limits on parts and depth), not on the
`email` package: the analysis must stay fast (bench/bounce.py) and
bounded on hostile input (10 MB of text, deep nesting, broken
boundaries). Only the first `TEXT_BUDGET` bytes of any part are decoded:
everything a bounce says about its failure is near the top of its parts.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from nmail.mime.charsets import decode_bytes
from nmail.mime.fields import read_header_block
from nmail.mime.headers import decode_header_value
from nmail.mime.params import parse_params
from nmail.mime.parts import PART_FIELDS, Part, iter_parts
from nmail.mime.preview import html_to_text
from nmail.mime.threads import first_message_id

TEXT_BUDGET = 64 * 1024  # bytes of one part decoded for reading
MAX_TEXT_PARTS = 4  # human-readable parts read, in order

TOP_FIELDS = PART_FIELDS | frozenset({
    b"from", b"to", b"subject", b"date", b"message-id", b"return-path", b"auto-submitted",
    b"x-autoreply", b"x-autorespond", b"precedence", b"x-failed-recipients", b"sender",
    b"x-mailer-daemon", b"x-mailererror", b"x-loop",
})
ORIGINAL_FIELDS = frozenset({b"subject", b"message-id", b"to", b"from", b"date"})
REPORT_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
ORIGINAL_TYPES = frozenset({
    "message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers",
})
_LINE_TAG = re.compile(r"<\s*(?:br|/?p|/?div|/?tr|/?li|/?h[1-6]|/?table)\b[^<>]*>", re.I)
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


@dataclass(frozen=True, slots=True)
class MessageView:
    """The parts of a message the analysis looks at."""

    raw: bytes
    fields: dict[bytes, bytes]  # top-level fields in TOP_FIELDS, raw
    report_type: str  # multipart/report's report-type, lowercased, "" otherwise
    parts: tuple[Part, ...]

    def field(self, name: bytes) -> str:
        """A top-level field as display text ("" when absent)."""
        raw = self.fields.get(name)
        return decode_header_value(raw) if raw else ""

    def texts(self) -> list[str]:
        """The human-readable parts (plain, or HTML as text), decoded, in order."""
        out: list[str] = []
        for part in self.parts:
            if part.content_type in ("text/plain", "text/html") and not part.is_attachment:
                text = part_text(self.raw, part)
                if part.content_type == "text/html":
                    # Keep the lines: the scan reads a bounce line by line.
                    text = html_to_text(_LINE_TAG.sub("\n", text.replace("\n", " ")))
                out.append(text.replace("\r\n", "\n"))
                if len(out) >= MAX_TEXT_PARTS:
                    break
        return out

    def report(self) -> str | None:
        """The delivery-status part, decoded; None when there is none."""
        for part in self.parts:
            if part.content_type in REPORT_TYPES:
                return part_text(self.raw, part)
        return None

    def original(self) -> tuple[str, str]:
        """(Subject, Message-ID) of the returned original, when a part carries it."""
        for part in self.parts:
            if part.content_type in ORIGINAL_TYPES:
                data = _transfer_decoded(self.raw, part)
                return original_fields(data)
        return "", ""


def read_message(raw: bytes) -> MessageView:
    """The view of `raw` (never raises on malformed mail)."""
    block = read_header_block(raw, TOP_FIELDS)
    report_type = ""
    content_type = block.fields.get(b"content-type")
    if content_type:
        params = parse_params(content_type)
        if params.value == "multipart/report":
            report_type = params.get("report-type").lower()
    parts = tuple(iter_parts(raw, block.fields, block.body_start, len(raw)))
    return MessageView(raw, block.fields, report_type, parts)


def part_text(raw: bytes, part: Part) -> str:
    """The start of a part's body as text (transfer encoding undone, charset decoded)."""
    data = _transfer_decoded(raw, part)
    return decode_bytes(data, part.charset or None, partial=part.end - part.start > TEXT_BUDGET)


def original_fields(data: bytes) -> tuple[str, str]:
    """(Subject, Message-ID) from the header block at the start of `data`."""
    block = read_header_block(data, ORIGINAL_FIELDS)
    subject = block.fields.get(b"subject")
    message_id = block.fields.get(b"message-id")
    return (
        decode_header_value(subject) if subject else "",
        first_message_id(message_id) if message_id else "",
    )


def _transfer_decoded(raw: bytes, part: Part) -> bytes:
    end = min(part.end, part.start + TEXT_BUDGET)
    data = raw[part.start:end]
    if part.transfer_encoding == "base64":
        compact = _NOT_BASE64.sub(b"", data)
        compact = compact[: len(compact) - len(compact) % 4]
        try:
            return binascii.a2b_base64(compact)
        except (binascii.Error, ValueError):
            return b""
    if part.transfer_encoding == "quoted-printable":
        try:
            return binascii.a2b_qp(data)
        except (binascii.Error, ValueError):
            return data
    return data
