"""Messages the webmail sends, built safely from what a user typed.

Every header value comes from a form, so everything is checked before the
standard library's `email` (policy SMTP: CRLF, RFC 2047 for non-ASCII names
and subjects, RFC 2231 for attachment names) writes it: no control
character anywhere (so no CR/LF header injection), addresses of the plain
`local@domain` shape (an international domain is written in IDNA), names and
subjects of bounded length. A bad value raises `ComposeError` naming the
field, and nothing is built.
"""

from __future__ import annotations

import base64
import email.policy
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.headerregistry import Address as EmailAddress
from email.message import EmailMessage
from email.utils import format_datetime, formatdate
from pathlib import Path
from typing import IO

from nmail.mime.addresses import parse_addresses

Address = tuple[str, str]  # (display name, address)

MAX_SUBJECT = 998
MAX_NAME = 200
MAX_RECIPIENTS = 500
MAX_MESSAGE_ID = 250  # longer ones (or not ASCII) are not referred to
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9\-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ANGLES_AND_QUOTES = re.compile(r'"(?:[^"\\]|\\.)*"|<[^>]*>')
_POLICY = email.policy.SMTP.clone(max_line_length=78, refold_source="none")


class ComposeError(ValueError):
    """A value the user gave cannot go into a message; `field` says which one."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    """An attachment: its name (as the user's file had it), type and content: bytes, or
    a file (a staged upload's path, a form's spooled upload) read a piece at a time by
    `spool_message` (mime/compose_spool.py) and whole only by `build_message`."""

    filename: str
    content_type: str
    data: bytes | Path | IO[bytes]

    @property
    def size(self) -> int:
        if isinstance(self.data, bytes):
            return len(self.data)
        if isinstance(self.data, Path):
            return self.data.stat().st_size
        return self.data.seek(0, os.SEEK_END)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to build: checked values only (see `check_address`, `check_text`)."""

    sender: Address
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    subject: str = ""
    text: str = ""
    html: str = ""  # the rich-text body, already sanitized; `text` is its plain alternative
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    files: tuple[OutgoingFile, ...] = ()
    # Forwarded as message/rfc822, as they are (line ends made CRLF): bytes, or a file
    # (the stored original) copied a piece at a time by `spool_message`.
    attached_messages: tuple[bytes | IO[bytes], ...] = ()
    message_id: str = ""
    date: float = field(default_factory=time.time)


def new_message_id(hostname: str) -> str:
    """A fresh Message-ID (without brackets) on our host name."""
    host = "".join(ch for ch in hostname if ch.isalnum() or ch in ".-") or "localhost"
    return f"{uuid.uuid4().hex}@{host}"


def check_address(address: str, field_name: str = "to") -> str:
    """`local@domain` checked and normalized (IDNA domain, lower case); ComposeError if bad."""
    if _CONTROL.search(address):
        raise ComposeError(field_name, f"bad address: {address!r}")
    address = address.strip()
    if " " in address:
        raise ComposeError(field_name, f"bad address: {address!r}")
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") \
            or ".." in local:
        raise ComposeError(field_name, f"bad address: {address!r}")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower() if not domain.isascii() \
            else domain.lower()
    except UnicodeError:
        raise ComposeError(field_name, f"bad domain: {domain!r}") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise ComposeError(field_name, f"bad domain: {domain!r}")
    return f"{local}@{ascii_domain}"


def check_text(value: str, field_name: str, limit: int) -> str:
    """A one-line header text: no control characters, at most `limit` characters."""
    if _CONTROL.search(value):
        raise ComposeError(field_name, f"{field_name} must be one line of text")
    value = value.strip()
    if len(value) > limit:
        raise ComposeError(field_name, f"{field_name} is longer than {limit} characters")
    return value


def parse_recipients(text: str, field_name: str) -> tuple[Address, ...]:
    """Recipients as typed ("김철수 <kim@x.kr>, lee@y.kr") checked; ComposeError if any is bad.

    A line break separates addresses like a comma; group syntax ("team: a@b;")
    is refused, as no one types it into a webmail and it would hide recipients.
    """
    text = text.replace("\r\n", ",").replace("\r", ",").replace("\n", ",").replace("\t", " ")
    if _CONTROL.search(text):
        raise ComposeError(field_name, "addresses must be text")
    if ":" in _ANGLES_AND_QUOTES.sub("", text):
        raise ComposeError(field_name, f"bad address: {text.strip()!r}")
    pairs = parse_addresses(text)
    if len(pairs) > MAX_RECIPIENTS:
        raise ComposeError(field_name, f"more than {MAX_RECIPIENTS} recipients")
    out: list[Address] = []
    for name, address in pairs:
        if not address:
            raise ComposeError(field_name, f"no address in {name!r}")
        out.append((check_text(name, field_name, MAX_NAME), check_address(address, field_name)))
    return tuple(out)


def build_message(out: Outgoing, *, hostname: str, include_bcc: bool = False) -> bytes:
    """The RFC 5322 bytes (CRLF) of `out`. Bcc is written only when `include_bcc`
    (the copy kept in Sent or Drafts), never into what recipients get."""
    markers = [message_marker() for _ in out.attached_messages]
    built = message_of(out, hostname=hostname, include_bcc=include_bcc,
                       marker=markers.__getitem__).as_bytes()
    for marker, attached in zip(markers, out.attached_messages, strict=True):
        built = built.replace(marker, crlf_message(read_whole(attached)), 1)
    return built


def message_marker() -> bytes:
    """A unique line (with its CRLF) that stands for an attached message while `email`
    writes the rest: `email` would parse the message and write it again (not the bytes
    that came), and needs it whole in memory."""
    return base64.b64encode(os.urandom(45)) + b"\r\n"


def crlf_message(data: bytes) -> bytes:
    """A message's bytes with every line ending CRLF, ending with one."""
    data = crlf_lines(data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def crlf_lines(data: bytes) -> bytes:
    """`data` with every bare CR and bare LF made CRLF."""
    if data.count(b"\r") == data.count(b"\n") == data.count(b"\r\n"):
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def read_whole(data: bytes | Path | IO[bytes]) -> bytes:
    """An attachment's content as bytes."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, Path):
        return data.read_bytes()
    data.seek(0)
    return data.read()


def message_of(out: Outgoing, *, hostname: str, include_bcc: bool,
               content: Callable[[OutgoingFile], bytes] = lambda item: read_whole(item.data),
               marker: Callable[[int], bytes] = lambda _index: message_marker()
               ) -> EmailMessage:
    """The message `build_message` writes; each file's content from `content` (the
    spooled build gives a stand-in it replaces while writing), each attached message
    a `marker` line (in place of which the message is written)."""
    msg = EmailMessage(policy=_POLICY)
    msg["Date"] = format_datetime_local(out.date)
    # Names and subjects are encoded here, not by `email`: its folder puts the
    # space between two encoded words outside them, where RFC 2047 readers
    # (the standard library's own included) drop it ("12월 정기" -> "12월정기").
    msg.set_raw("From", _address_header([out.sender], "from"))
    if out.to:
        msg.set_raw("To", _address_header(out.to, "to"))
    if out.cc:
        msg.set_raw("Cc", _address_header(out.cc, "cc"))
    if include_bcc and out.bcc:
        msg.set_raw("Bcc", _address_header(out.bcc, "bcc"))
    # Text is never given to `email`'s header registry when it holds "=?": the
    # registry DECODES encoded words it is given, and writes the decoded CR LF
    # as a line break (Python < 3.13): a subject or a Message-ID of a hostile
    # message, taken into a reply, would add header fields of the sender's
    # choosing (Reply-To: ...) to mail we sign.
    subject = check_text(out.subject, "subject", MAX_SUBJECT)
    if subject.isascii() and "=?" not in subject:
        msg["Subject"] = subject
    else:
        msg.set_raw("Subject", encode_words(subject, len("Subject: ")))
    msg.set_raw("Message-ID", f"<{_msg_id(out.message_id or new_message_id(hostname))}>")
    in_reply_to = _reference(out.in_reply_to)
    if in_reply_to:
        msg.set_raw("In-Reply-To", f"<{in_reply_to}>")
    references = [ref for ref in map(_reference, out.references) if ref][-20:]
    if references:
        msg.set_raw("References", "\r\n ".join(f"<{ref}>" for ref in references))
    msg["MIME-Version"] = "1.0"
    msg["User-Agent"] = "nmail webmail"
    text = _lines(out.text)
    # Base64 for non-ASCII text: no server on the way needs 8BITMIME.
    msg.set_content(text, subtype="plain", charset="utf-8", cte=_cte(text))
    if out.html:
        markup = _lines(out.html)
        msg.add_alternative(markup, subtype="html", charset="utf-8", cte=_cte(markup))
    for index in range(len(out.attached_messages)):
        # As `email` writes a message it was given (cte 8bit), without parsing it.
        msg.add_attachment(marker(index), maintype="message", subtype="rfc822", cte="8bit",
                           disposition="attachment")
    for item in out.files:
        maintype, _, subtype = item.content_type.partition("/")
        if not maintype or not subtype or _CONTROL.search(item.content_type):
            maintype, subtype = "application", "octet-stream"
        name = check_text(item.filename, "attachment", 255) or "attachment"
        msg.add_attachment(content(item), maintype=maintype, subtype=subtype, filename=name)
    return msg


def format_datetime_local(when: float) -> str:
    """An RFC 5322 Date in the server's local zone."""
    return formatdate(when, localtime=True)


def encode_words(text: str, first_line_used: int = 0) -> str:
    """`text` as RFC 2047 UTF-8 base64 words, folded; spaces stay inside the words."""
    words: list[str] = []
    chunk = ""
    for char in text:
        # 39 bytes of UTF-8 make 52 base64 characters: a 64-character word.
        if len((chunk + char).encode("utf-8")) > 39:
            words.append(chunk)
            chunk = ""
        chunk += char
    if chunk:
        words.append(chunk)
    encoded = [f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words]
    lines: list[str] = []
    used = first_line_used
    for word in encoded:
        if lines and used + 1 + len(word) > 76:
            lines.append("\r\n " + word)
            used = 1 + len(word)
        else:
            lines.append((" " if lines else "") + word)
            used += len(word) + (1 if len(lines) > 1 else 0)
    return "".join(lines)


def _address_header(pairs: tuple[Address, ...] | list[Address], field_name: str) -> str:
    parts = []
    for name, address in pairs:
        checked = check_address(address, field_name)
        shown = check_text(name, field_name, MAX_NAME)
        if not shown:
            parts.append(checked)
        elif shown.isascii():
            local, _, domain = checked.rpartition("@")
            parts.append(str(EmailAddress(display_name=shown, username=local, domain=domain)))
        else:
            parts.append(f"{encode_words(shown, 6)} <{checked}>")
    return ",\r\n ".join(parts)


def _msg_id(value: str) -> str:
    value = value.strip().removeprefix("<").removesuffix(">")
    if (not value or len(value) > MAX_MESSAGE_ID or not value.isascii()
            or _CONTROL.search(value) or any(ch in value for ch in " <>")):
        raise ComposeError("references", "bad message id")
    return value


def _reference(value: str) -> str | None:
    """A message id to refer to (In-Reply-To, References), None when it is unusable:
    it comes from someone else's message, and a reply must not fail because of it."""
    try:
        return _msg_id(value) if value.strip() else None
    except ComposeError:
        return None


def _cte(text: str) -> str:
    return "7bit" if text.isascii() and max(map(len, text.split("\n"))) < 900 else "base64"


def _lines(text: str) -> str:
    """Text with LF line ends (the generator writes CRLF) and a final newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


__all__ = [
    "Address", "ComposeError", "Outgoing", "OutgoingFile", "build_message", "check_address",
    "check_text", "format_datetime", "new_message_id", "parse_recipients",
]
