"""Header values to display text: RFC 2047 words, raw 8-bit bytes, attachment names."""

from __future__ import annotations

import re

from nmail.mime.addresses import format_addresses, parse_addresses
from nmail.mime.encoded_words import decode_encoded_words
from nmail.mime.params import parse_params
from nmail.mime.raw_header import clean_text, header_text

__all__ = [
    "decode_filename",
    "decode_header_value",
    "format_addresses",
    "parse_addresses",
]


def decode_header_value(raw: bytes | str) -> str:
    """An unstructured header (Subject...) as text: unfolded, encoded words and 8-bit decoded."""
    if isinstance(raw, bytes) and raw.isascii() and raw.find(b"=?") < 0:
        text = raw.decode("ascii")
        if text.isprintable():  # printable ASCII on one line: nothing to decode
            return text.strip()  # the common case, kept cheap for the hot path
    return clean_text(decode_encoded_words(header_text(raw)))


def decode_filename(
    content_disposition: bytes | str | None, content_type: bytes | str | None = None
) -> str:
    """The attachment name from Content-Disposition `filename`, else Content-Type `name`.

    Understands RFC 2231 (`filename*=EUC-KR''%B0%A1`, continuations), RFC 2047
    inside quotes and raw 8-bit names. Directory parts a sender's client left
    in the name ("C:\\Users\\kim\\보고서.hwp") are dropped. "" when there is none.
    The result is for display; code that writes files must still vet it.
    """
    name = ""
    if content_disposition:
        name = parse_params(content_disposition).get("filename")
    if not name and content_type:
        name = parse_params(content_type).get("name")
    name = clean_text(name)
    base = re.split(r"[/\\]", name)[-1].strip()
    return base or name.strip("/\\ ")
