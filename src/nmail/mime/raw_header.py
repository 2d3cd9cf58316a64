"""One header field's raw value to text: unfolded, 8-bit bytes decoded, controls removed."""

from __future__ import annotations

import re

from nmail.mime.charsets import decode_bytes

_FOLD_BYTES = re.compile(rb"\r?\n(?=[ \t])")
_FOLD_TEXT = re.compile(r"\r?\n(?=[ \t])")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# C0 and C1 controls and DEL become spaces: a decoded header is one line of display text.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def header_text(raw: bytes | str) -> str:
    """Unfold a header value and decode raw 8-bit bytes (EUC-KR/CP949/UTF-8...).

    RFC 2047 encoded words are left alone: they are ASCII, and decoding them
    before a structured header is tokenized could let an encoded comma or
    quote change its structure.
    """
    if isinstance(raw, str):
        if raw.isascii():
            return _CONTROLS.sub(" ", _FOLD_TEXT.sub("", raw))
        if _SURROGATE.search(raw) is None:
            return _CONTROLS.sub(" ", _FOLD_TEXT.sub("", raw))
        # A str carrying undecoded bytes (surrogateescape): decode the bytes here.
        raw = raw.encode("utf-8", "surrogatepass" if _has_lone_surrogate(raw) else
                         "surrogateescape")
    unfolded = _FOLD_BYTES.sub(b"", raw)
    if unfolded.isascii() and b"\x1b" not in unfolded:  # ESC: maybe raw ISO-2022-KR
        return _CONTROLS.sub(" ", unfolded.decode("ascii"))
    return _CONTROLS.sub(" ", decode_bytes(unfolded, None))


def clean_text(text: str) -> str:
    """Controls to spaces, ends stripped: decoded header text ready for display."""
    return _CONTROLS.sub(" ", text).strip()


def _has_lone_surrogate(text: str) -> bool:
    """True when `text` holds a surrogate that surrogateescape cannot turn into a byte."""
    return any(not 0xDC80 <= ord(char) <= 0xDCFF for char in _SURROGATE.findall(text))
