"""Checks and normal forms for what goes onto the wire.

Every envelope value that ends up in an SMTP command line or a DSN header
is checked here, so no CR, LF or NUL can ever reach the remote server (no
command injection, no outbound SMTP smuggling). Bodies are brought to
CRLF line endings before they are signed and stored, so what is signed is
exactly what is sent.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from nmail.message_source import MessageSource
from nmail.queue.errors import QueueInputError

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# CRLF stays, a lone CR or a lone LF becomes CRLF.
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
MAX_ADDRESS = 320
MAX_DOMAIN = 253
DSN_NOTIFY_VALUES = frozenset({"NEVER", "SUCCESS", "FAILURE", "DELAY"})


def check_text(value: str, what: str, max_length: int = 1000) -> str:
    """Refuse control characters (CR, LF, NUL, ...) in a value bound for the wire."""
    if _BAD_CHARS.search(value):
        raise QueueInputError(f"{what} contains a control character (CR, LF or NUL): {value!r}")
    if len(value) > max_length:
        raise QueueInputError(f"{what} is longer than {max_length} characters")
    return value


def check_address(address: str, what: str, *, allow_null: bool = False) -> str:
    """A mailbox `local@domain` fit for MAIL FROM / RCPT TO; "" only if allow_null."""
    check_text(address, what, MAX_ADDRESS)
    if address == "":
        if allow_null:
            return address
        raise QueueInputError(f"{what} is empty")
    if any(ch in address for ch in " <>"):
        raise QueueInputError(f"{what} {address!r} contains a space or angle bracket")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise QueueInputError(f"{what} {address!r} is not of the form local@domain")
    if len(domain) > MAX_DOMAIN or domain.startswith(".") or ".." in domain:
        raise QueueInputError(f"{what} {address!r} has a bad domain")
    return address


def address_domain(address: str) -> str:
    """The domain of local@domain, lower case, brackets kept for address literals."""
    return address.rpartition("@")[2].lower()


def check_notify(notify: str | None) -> str | None:
    """RFC 3461 NOTIFY: NEVER alone, or any of SUCCESS, FAILURE, DELAY."""
    if notify is None or notify == "":
        return None
    check_text(notify, "NOTIFY", 40)
    values = [v.strip().upper() for v in notify.split(",") if v.strip()]
    if not values or any(v not in DSN_NOTIFY_VALUES for v in values):
        raise QueueInputError(f"NOTIFY {notify!r}: expected NEVER or SUCCESS,FAILURE,DELAY")
    if "NEVER" in values and len(values) > 1:
        raise QueueInputError("NOTIFY=NEVER cannot be combined with other values")
    return ",".join(dict.fromkeys(values))


def normalize_line_endings(content: bytes) -> bytes:
    """Bare CR and bare LF become CRLF; the result ends with CRLF."""
    out = _LINE_ENDINGS.sub(b"\r\n", content)
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def wire_ready(content: MessageSource) -> MessageSource:
    """The body to queue: CRLF only, ending in CRLF.

    A spooled message is that already: it came by DATA, which refuses any
    bare CR or LF and ends every message with CRLF (protocols/smtp/data.py);
    its trace header is ours. Sending checks the line endings again anyway.
    """
    return normalize_line_endings(content) if isinstance(content, bytes) else content


def header_block(content: bytes) -> bytes:
    """The header section of a CRLF message, including its final CRLF."""
    end = content.find(b"\r\n\r\n")
    if content.startswith(b"\r\n"):
        return b""
    return content if end < 0 else content[: end + 2]


def header_value(content: bytes, name: str) -> str | None:
    """The unfolded value of the first header `name` (ASCII-safe decode), or None."""
    wanted = name.lower().encode("ascii") + b":"
    lines = header_block(content).split(b"\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(wanted):
            value = line[len(wanted) :]
            for cont in lines[i + 1 :]:
                if cont[:1] not in (b" ", b"\t"):
                    break
                value += b" " + cont.strip()
            return value.decode("utf-8", "replace").strip()
    return None


def from_domain(content: bytes) -> str | None:
    """The domain of the From: header's (first) address, lower case."""
    value = header_value(content, "From")
    if not value:
        return None
    for _, addr in getaddresses([value]):
        if "@" in addr:
            return address_domain(addr)
    return None
