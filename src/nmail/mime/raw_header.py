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
        if raw.isprintable():
            return raw  # no fold, control or surrogate: the usual case, kept cheap
        if raw.isascii() or _SURROGATE.search(raw) is None:
            return _without_controls(_FOLD_TEXT.sub("", raw))
        # A str carrying undecoded bytes (surrogateescape): decode the bytes here.
        raw = raw.encode("utf-8", "surrogatepass" if _has_lone_surrogate(raw) else
                         "surrogateescape")
    # Ints, not one-byte bytes: on 3.11 `bytes in bytes` first tries the needle
    # as an int and builds and drops a TypeError (~2k instructions, callgrind).
    unfolded = _unfold(raw) if 10 in raw else raw  # LF
    if unfolded.isascii() and 27 not in unfolded:  # ESC: maybe raw ISO-2022-KR
        text = unfolded.decode("ascii")
    else:
        text = decode_bytes(unfolded, None)
    return text if text.isprintable() else _without_controls(text)


def clean_text(text: str) -> str:
    """Controls to spaces, ends stripped: decoded header text ready for display."""
    return _without_controls(text).strip()


def _unfold(raw: bytes) -> bytes:
    """Folding line breaks (those before a space or tab) removed."""
    if raw.find(b"\n\r\n") >= 0:
        return _FOLD_BYTES.sub(b"", raw)
    # The same as the substitution, and cheaper: without "\n\r\n", no removal
    # puts a "\n" that was not folding before a space or tab.
    return (raw.replace(b"\r\n ", b" ").replace(b"\r\n\t", b"\t")
            .replace(b"\n ", b" ").replace(b"\n\t", b"\t"))


def _without_controls(text: str) -> str:
    """Controls to spaces."""
    # C0 and C1 controls are not printable, and isprintable() is far cheaper than
    # a substitution. Usually there is no control, or only the tabs of folding.
    if text.isprintable():
        return text
    spaced = text.replace("\t", " ")
    return spaced if spaced.isprintable() else _CONTROLS.sub(" ", text)


def _has_lone_surrogate(text: str) -> bool:
    """True when `text` holds a surrogate that surrogateescape cannot turn into a byte."""
    return any(not 0xDC80 <= ord(char) <= 0xDCFF for char in _SURROGATE.findall(text))
