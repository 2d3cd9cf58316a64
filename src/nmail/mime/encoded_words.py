"""RFC 2047 encoded words ("=?charset?B|Q?text?=") in header text, leniently."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field

from nmail.mime.charsets import decode_bytes, normalize_charset

# Lenient: a language suffix ("utf-8*ko") is allowed, encoded text may be empty,
# and a word glued to surrounding text is still decoded (as mail clients do).
_ENCODED_WORD = re.compile(r"=\?([^?\s*]{1,64})(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


@dataclass(slots=True)
class _Run:
    """Consecutive encoded words in one charset, their bytes joined before decoding."""

    charset: str
    label: str
    data: bytearray = field(default_factory=bytearray)


def decode_encoded_words(text: str) -> str:
    """Replace the RFC 2047 encoded words in `text` with what they encode.

    Whitespace between adjacent encoded words is dropped; consecutive words in
    the same charset are joined as bytes first, so a multibyte character split
    across two words survives. A malformed word stays as it was written.
    """
    if "=?" not in text:
        return text
    out: list[str | _Run] = []
    position = 0
    previous_was_word = False
    for match in _ENCODED_WORD.finditer(text):
        label, encoding, encoded = match.groups()
        between = text[position:match.start()]
        payload = _payload(encoding, encoded)
        if payload is None:
            out.append(between + match.group(0))
            previous_was_word = False
            position = match.end()
            continue
        adjacent = previous_was_word and not between.strip(" \t\r\n")
        if not adjacent and between:
            out.append(between)
        charset = normalize_charset(label)
        last = out[-1] if out else None
        if adjacent and isinstance(last, _Run) and last.charset == charset and (
            charset or last.label.lower() == label.lower()
        ):
            last.data += payload
        else:
            out.append(_Run(charset, label, bytearray(payload)))
        previous_was_word = True
        position = match.end()
    if position < len(text):
        out.append(text[position:])
    return "".join(
        piece if isinstance(piece, str) else decode_bytes(bytes(piece.data), piece.charset or None)
        for piece in out
    )


def _payload(encoding: str, encoded: str) -> bytes | None:
    """The bytes an encoded word carries, or None when it cannot be decoded."""
    raw = encoded.encode("utf-8", "surrogatepass")
    if encoding in "bB":
        raw = raw.rstrip(b"=")
        if len(raw) % 4 == 1:
            return None  # not base64 at all; show the word as written
        try:
            return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            return None
    try:
        return binascii.a2b_qp(raw, header=True)
    except (binascii.Error, ValueError):
        return None
