"""Attachment names made safe to save, and the download headers (RFC 6266).

A sender chooses the name: `../../.bashrc`, `a\\x00.html`, `invoice\\u202egpj.exe`
(shown as "invoiceexe.jpg"), `CON`, 500 characters. The name offered to the
browser has no directory part, no control, format (bidi, zero-width) or NUL
character, no character Windows refuses, no leading dot and a bounded
length; the extension is kept so the type a user sees is the real one.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                              *(f"lpt{i}" for i in range(10))})
_MAX_CHARS = 120
_ASCII_FALLBACK = re.compile(r"[^A-Za-z0-9._\- ()\[\]+,=@]")


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A file name to offer for saving: no path, controls, bidi tricks or device names."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(" " if ch in "\t\r\n" or unicodedata.category(ch) in ("Zl", "Zp") else
                   "" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") else ch
                   for ch in name)
    name = re.split(r"[/\\]", name)[-1]
    name = _WINDOWS_FORBIDDEN.sub("_", name)
    name = " ".join(name.split())
    name = name.strip(" .")
    if not name:
        return fallback
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    if stem.split(".")[0].lower() in _WINDOWS_DEVICES:
        stem = "_" + stem
    extension = extension[:16]
    stem = stem[: _MAX_CHARS - len(extension) - 1] if extension else stem[:_MAX_CHARS]
    return f"{stem}.{extension}" if extension else stem


def content_disposition(name: str, *, inline: bool = False) -> str:
    """`attachment; filename="..."; filename*=UTF-8''...` for an already safe name."""
    ascii_name = _ASCII_FALLBACK.sub("_", name) or "attachment"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def download_headers(name: str, *, inline: bool = False) -> dict[str, str]:
    """Headers every download carries: the disposition, no sniffing, no script."""
    return {
        "Content-Disposition": content_disposition(safe_filename(name), inline=inline),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
    }
