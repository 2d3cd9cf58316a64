"""MIME header parameters (Content-Type, Content-Disposition), the way mailers write them.

Handles RFC 2045 `name=value` and `name="quoted"`, RFC 2231 `name*=charset''%XX`
and continuations (`name*0*=`, `name*1=`...), RFC 2047 encoded words inside
values (not standard, common) and raw 8-bit values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from nmail.mime.charsets import decode_bytes, normalize_charset
from nmail.mime.encoded_words import decode_encoded_words
from nmail.mime.raw_header import header_text

# name=value or name="quoted value". A name starts after ";", a space or a
# quote, so a run of junk is scanned once (not once per character), and a
# missing ";" between two parameters is tolerated. A quoted value is read as
# runs of plain characters between quoted pairs, not one character at a time.
_PARAM = re.compile(
    r'(?<![^\s;"])([^=;"\s]+)\s*=\s*(?:(")([^"\\]*(?:\\.[^"\\]*)*)"?|([^;]*))', re.DOTALL
)
_QUOTED_PAIR = re.compile(r'\\(["\\])')
_MAX_INPUT = 8192  # characters of a parameterized header read; real ones are far shorter
_MAX_SECTIONS = 1000  # RFC 2231 continuation numbers accepted (0..999)


@dataclass(frozen=True, slots=True)
class HeaderParams:
    """A parsed parameterized header: `value` lowercased, parameter names lowercased."""

    value: str
    params: dict[str, str]

    def get(self, name: str) -> str:
        """The decoded parameter `name` (lowercase), or ""."""
        return self.params.get(name, "")


def parse_params(raw: bytes | str) -> HeaderParams:
    """Split a header like `text/plain; charset="euc-kr"` into value and parameters."""
    text = header_text(raw[:_MAX_INPUT])
    main, _, rest = text.partition(";")
    words = main.split()
    value = words[0].lower() if words else ""
    simple: dict[str, str] = {}
    extended: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[bool, str]]] = {}
    for name, param in _iter_params(rest):
        base, star, tail = name.partition("*")
        if not star:
            simple.setdefault(name, param)
        elif not tail:
            extended.setdefault(base, param)
        else:
            number, encoded, _ = tail.partition("*")
            if number.isdigit() and int(number) < _MAX_SECTIONS:
                sections.setdefault(base, {}).setdefault(int(number), (bool(encoded), param))
    params = {name: decode_encoded_words(param).strip() for name, param in simple.items()}
    for base, parts in sections.items():
        params[base] = _join_sections(parts)
    for base, param in extended.items():
        params[base] = _decode_extended(param)
    return HeaderParams(value, params)


def _iter_params(rest: str) -> list[tuple[str, str]]:
    """(lowercased name, unquoted value) pairs; junk without "=" is skipped."""
    return [
        (name.lower(), _unquote(quoted) if quote else plain.strip())
        for name, quote, quoted, plain in _PARAM.findall(rest)
    ]


def _unquote(quoted: str) -> str:
    """A quoted string's content with its quoted pairs undone."""
    return _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted


def _decode_extended(param: str) -> str:
    """An RFC 2231 `charset'language'percent-encoded` value."""
    charset, language_and_rest = _split_charset(param)
    return decode_bytes(unquote_to_bytes(language_and_rest), charset or None).strip()


def _split_charset(param: str) -> tuple[str, str]:
    """("charset", "percent-encoded") from `charset'lang'value`; no charset if malformed."""
    pieces = param.split("'", 2)
    if len(pieces) == 3:
        return pieces[0], pieces[2]
    return "", param


def _join_sections(parts: dict[int, tuple[bool, str]]) -> str:
    """Join RFC 2231 continuations as bytes, then decode once (characters may be split)."""
    ordered = [parts[number] for number in sorted(parts)]
    if not any(encoded for encoded, _ in ordered):
        # Some mailers split RFC 2047 words over plain continuations.
        return decode_encoded_words("".join(param for _, param in ordered)).strip()
    charset = ""
    first_encoded, first = ordered[0]
    if first_encoded:
        charset, first = _split_charset(first)
        ordered[0] = (True, first)
    codec = normalize_charset(charset) or "utf-8"
    data = bytearray()
    for encoded, param in ordered:
        data += unquote_to_bytes(param) if encoded else param.encode(codec, "replace")
    return decode_bytes(bytes(data), charset or None).strip()
