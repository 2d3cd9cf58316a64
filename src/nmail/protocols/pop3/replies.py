"""POP3 response lines (RFC 1939 status indicators, RFC 2449/3206 response codes)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def ok(text: str = "") -> bytes:
    """A positive response line."""
    return f"+OK {text}\r\n".encode() if text else b"+OK\r\n"


def err(text: str, code: str | None = None) -> bytes:
    """A negative response line, with an optional [CODE] (AUTH, IN-USE, SYS/TEMP...)."""
    if code:
        return f"-ERR [{code}] {text}\r\n".encode()
    return f"-ERR {text}\r\n".encode()


def multiline(first: str, lines: Iterable[str]) -> bytes:
    """'+OK first', the lines (byte-stuffed), and the '.' terminator."""
    body = "".join(f".{line}\r\n" if line.startswith(".") else f"{line}\r\n" for line in lines)
    return f"+OK {first}\r\n{body}.\r\n".encode()


def wire_uidl(uidl: str) -> str:
    """A unique-id RFC 1939 accepts: 1-70 characters from 0x21 to 0x7E.

    Maildir unique names nearly always qualify and are sent as they are;
    one that does not (a very long host name) is replaced by a hash of
    itself, which is just as stable.
    """
    # isprintable() on ASCII is 0x20-0x7E; the space is excluded separately.
    if 0 < len(uidl) <= 70 and uidl.isascii() and uidl.isprintable() and " " not in uidl:
        return uidl
    return hashlib.sha256(uidl.encode("utf-8", "surrogateescape")).hexdigest()[:40]
