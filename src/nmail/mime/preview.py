"""The preview line of a message list: the start of the text body, as plain words.

Only the first few KB of a body are decoded; the budget grows only when what
was read collapses to too little text (HTML with a big <style> block).
"""

from __future__ import annotations

import binascii
import functools
import html
import re

from nmail.mime.charsets import decode_bytes

PREVIEW_CHARS = 200
_FIRST_READ = 1024  # bytes of a plain body read first (HTML: 16 times more)
_MAX_READ = 64 * 1024  # never read more than this of a plain body for a preview (HTML: 4x)
_FIRST_WINDOW = PREVIEW_CHARS + 56  # characters collapsed first: enough for most texts

_ENCODINGS = frozenset({"base64", "quoted-printable"})  # what transfer_decode undoes
# Labels decode_bytes reads ASCII bytes under as ASCII ("": none): not UTF-7,
# ISO-2022 or UTF-16/32 (see charsets._SEVEN_BIT, _WIDE).
_ASCII_READ = frozenset({"", "us-ascii", "ascii", "utf-8", "utf8", "iso-8859-1", "latin1",
                         "windows-1252", "cp1252", "euc-kr", "ks_c_5601-1987", "cp949"})
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(sorted(set(range(256)) - set(_BASE64_ALPHABET)))  # for bytes.translate
_SKIPPED_ELEMENT = re.compile(r"<!--|<(script|style|head|title|noscript|template|xml)\b", re.I)
_BLOCK_TAG = re.compile(
    r"<\s*/?\s*(?:br|p|div|td|th|tr|li|ul|ol|table|h[1-6]|hr|blockquote|pre|section|article"
    r"|header|footer|dd|dt|center|body)\b[^<>]*>",
    re.I,
)
_ANY_TAG = re.compile(r"<[^<>]*>")
_OPEN_TAG_AT_END = re.compile(r"<[^<>]*\Z")
# Controls that str.split() does not treat as space, and invisible characters
# (preheader padding in marketing mail): dropped.
_NOT_SHOWN = re.compile(
    r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u034f\u200b-\u200f\u2060\ufeff]"
)


def body_preview(raw: bytes, start: int, end: int, *, is_html: bool, charset: str,
                 transfer_encoding: str) -> str:
    """Up to PREVIEW_CHARS characters of the body `raw[start:end]`, whitespace collapsed."""
    if not is_html and transfer_encoding not in _ENCODINGS and charset.lower() in _ASCII_READ:
        # The usual plain text, in a few operations: the first read below, whose
        # bytes decode_bytes reads as ASCII when they all are (and hold no ESC,
        # which may start ISO-2022-KR), and which ends the loop when it gives
        # enough text or is the whole body.
        # Of that text _collapse looks at the first _FIRST_WINDOW characters
        # first; _collapse_all's plain-line case is tested on the bytes
        # (printable ASCII: nothing deleted by translate), with less work than
        # str.isprintable's per-character lookups.
        stop = min(end, start + _FIRST_READ)
        data = raw[start:stop]
        # 27 (ESC), `find`: see raw_header.header_text on `bytes in bytes`.
        if data.isascii() and 27 not in data:
            flat = data[:_FIRST_WINDOW].replace(b"\r\n", b" ").replace(b"\n", b" ")
            if flat.find(b"  ") < 0 and not flat.translate(None, _PRINTABLE_ASCII):
                preview = flat.decode("ascii").strip()
            else:
                preview = _collapse_all(data[:_FIRST_WINDOW].decode("ascii"))
            if len(preview) > PREVIEW_CHARS:
                return _cut(preview)
            if len(data) <= _FIRST_WINDOW and stop == end:
                return _cut(preview)  # the whole body was looked at
    return _read_preview(raw, start, end, is_html=is_html, charset=charset,
                         transfer_encoding=transfer_encoding)


def _read_preview(raw: bytes, start: int, end: int, *, is_html: bool, charset: str,
                  transfer_encoding: str) -> str:
    """body_preview for any body: reads grow until they give enough text."""
    budget = _FIRST_READ * (16 if is_html else 1)
    while True:
        stop = min(end, start + budget)
        truncated = stop < end
        data = transfer_decode(raw[start:stop], transfer_encoding, truncated)
        text = decode_bytes(data, charset or None, partial=truncated)
        if is_html:
            text = html_to_text(text, truncated=truncated)
        preview = _collapse(text)
        if (len(preview) >= PREVIEW_CHARS or not truncated
                or budget >= _MAX_READ * (4 if is_html else 1)):
            return _cut(preview)
        budget *= 4


def _collapse(text: str) -> str:
    """Enough of `text` for a preview, invisible characters dropped, whitespace collapsed.

    Only the first PREVIEW_CHARS + 1 characters of the result count (see `_cut`),
    and a longer window only extends the result, so the window starts small.
    """
    window = _FIRST_WINDOW
    while True:
        # Collapsing a few hundred characters is cheap; collapsing the whole text is not.
        preview = _collapse_all(text[:window])
        if len(preview) > PREVIEW_CHARS or window >= len(text):
            return preview
        window *= 4


def _collapse_all(text: str) -> str:
    """`text` with invisible characters dropped and whitespace collapsed."""
    # Printable text has no whitespace but " ", and nothing _NOT_SHOWN drops but
    # U+034F: plain lines of text only need their line breaks made spaces.
    flat = text.replace("\r\n", " ").replace("\n", " ")
    if "  " not in flat and flat.isprintable() and "\u034f" not in flat:
        return flat.strip()
    preview = " ".join(text.split())
    # What _NOT_SHOWN drops is never whitespace, so it would still be in `preview`.
    if not preview.isprintable() or "\u034f" in preview:
        preview = " ".join(_NOT_SHOWN.sub("", text).split())
    return preview


def html_to_text(markup: str, *, truncated: bool = False) -> str:
    """Text of an HTML document for a preview: no tags, scripts, styles or comments."""
    pieces: list[str] = []
    position = 0
    length = len(markup)
    while position < length:
        found = _SKIPPED_ELEMENT.search(markup, position)
        if found is None:
            pieces.append(markup[position:])
            break
        pieces.append(markup[position:found.start()])
        element = found.group(1)
        if element is None:  # a comment
            close = markup.find("-->", found.end())
            position = length if close < 0 else close + 3
            continue
        closing = _closing_tag(element.lower()).search(markup, found.end())
        if closing is not None:
            position = closing.end()
        elif element.lower() == "head" and not truncated:
            position = found.end()  # "<head>" never closed: keep what follows
        else:
            position = length  # cut off inside a style or script: nothing more to show
    text = " ".join(pieces)
    text = _BLOCK_TAG.sub(" ", text)
    text = _ANY_TAG.sub("", text)
    text = _OPEN_TAG_AT_END.sub("", text)
    return html.unescape(text)


@functools.lru_cache(maxsize=16)
def _closing_tag(element: str) -> re.Pattern[str]:
    return re.compile(rf"</\s*{element}\s*>", re.I)


def transfer_decode(data: bytes, encoding: str, truncated: bool = False) -> bytes:
    """Undo base64 or quoted-printable; anything else is taken as it is."""
    if encoding == "base64":
        compact = data.translate(None, _NOT_BASE64)  # line breaks, padding, junk
        extra = len(compact) % 4
        if truncated or extra == 1:
            compact = compact[: len(compact) - extra]  # a partial group: drop it
        else:
            compact += b"=" * (-extra % 4)
        try:
            return binascii.a2b_base64(compact)
        except (binascii.Error, ValueError):
            return b""
    if encoding == "quoted-printable":
        if truncated:
            newline = data.rfind(b"\n")
            if newline > 0:
                data = data[:newline + 1]  # never decode half of an "=XX" escape
        try:
            return binascii.a2b_qp(data)
        except (binascii.Error, ValueError):
            return data
    return data


def _cut(preview: str) -> str:
    """Cut at PREVIEW_CHARS, at a word boundary when one is near."""
    if len(preview) <= PREVIEW_CHARS:
        return preview
    cut = preview[:PREVIEW_CHARS]
    space = cut.rfind(" ")
    return cut[:space] if space >= PREVIEW_CHARS - 20 else cut
