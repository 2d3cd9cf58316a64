"""Who a message says it is from: every address in its From: and Sender: fields.

Submission checks these against what the account may use (policy/senders),
and DKIM signs only what passed, so the reading must not be fooled by what a
reader's mail client would show differently:

- every From: and Sender: field counts (a second From: is refused: RFC 5322
  allows one, and clients disagree on which they show), so a header block
  that does not end within the part we read is refused whole: a field
  past that point would go out unchecked;
- the parse is the standard library's RFC 5322 header parser (comments,
  groups, quoted local parts, encoded words); a value it finds defective in
  a way that changes the addresses is refused as ambiguous;
- besides the parsed mailboxes, anything that looks like an address
  anywhere in the field (a display name, a comment, an encoded word, a
  full-width @ after NFKC) is returned too: `"ceo@other" <me@mine>` shows
  "ceo@other" in most clients, so it must be ours as well.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email import errors as email_errors
from email.header import decode_header, make_header
from email.policy import default as default_policy

MAX_HEADER_BLOCK = 256 * 1024
# An address-like token: no white space, brackets, parentheses or separators.
_ADDRESS_LIKE = re.compile(r"[^\s<>()\[\],;:@]+@[^\s<>()\[\],;:@]+")
# What a header field name cannot hold (ftext is %d33-57 / %d59-126).
_NOT_FTEXT = re.compile(rb"[^\x21-\x39\x3b-\x7e]+")


@dataclass(frozen=True, slots=True)
class Originators:
    """The From:/Sender: addresses of a message, or why they cannot be read."""

    addresses: tuple[str, ...]  # parsed mailboxes and address-like text, as written
    problem: str | None = None  # set when the fields are missing or ambiguous
    author: str | None = None  # the first mailbox of From:


def originators(content: bytes) -> Originators:
    """Read every From: and Sender: address of `content` (a message, CRLF or LF)."""
    block = content[:MAX_HEADER_BLOCK]
    if len(content) > len(block) and b"\n\n" not in block and b"\n\r\n" not in block:
        return Originators((), f"the header is longer than {MAX_HEADER_BLOCK // 1024} KiB")
    fields = _fields(block, {"from", "sender"})
    froms = [value for name, value in fields if name == "from"]
    if not froms:
        return Originators((), "the message has no From: header")
    if len(froms) > 1:
        return Originators((), "the message has more than one From: header")
    if sum(1 for name, _ in fields if name == "sender") > 1:
        return Originators((), "the message has more than one Sender: header")
    found: list[str] = []
    author: str | None = None
    for name, raw in fields:
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Originators((), f"the {name.title()}: header is not UTF-8")
        try:
            header = default_policy.header_factory(name, value)
        except Exception:  # the stdlib parser has choked on odd input before: refuse, not crash
            return Originators((), f"the {name.title()}: header cannot be read")
        if any(isinstance(d, email_errors.InvalidHeaderDefect) for d in header.defects):
            return Originators((), f"the {name.title()}: header cannot be read unambiguously")
        mailboxes = [f"{a.username}@{a.domain}" for a in header.addresses]
        if not mailboxes or any(m.startswith("@") or m.endswith("@") for m in mailboxes):
            return Originators((), f"the {name.title()}: header has no address")
        if name == "from":
            author = mailboxes[0]
        found += mailboxes
        found += _address_like(value)
    return Originators(tuple(dict.fromkeys(found)), None, author)


def _fields(content: bytes, wanted: set[str]) -> list[tuple[str, bytes]]:
    """(lower-case name, unfolded raw value) of the wanted header fields, in order."""
    end = len(content)
    for marker in (b"\r\n\r\n", b"\n\n"):
        at = content.find(marker)
        if 0 <= at < end:
            end = at
    if content.startswith((b"\r\n", b"\n")):
        return []
    result: list[tuple[str, bytes]] = []
    for line in re.split(rb"\r?\n(?![ \t])", content[:end]):
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        # A field name is printable ASCII (RFC 5322 2.2). "From :" (white space
        # before the colon) is obsolete syntax some readers still honour, and a
        # lenient one may skip other bytes a name cannot hold (a NUL, a vertical
        # tab, a byte-order mark): compared without them, each counts as a From:.
        key = _NOT_FTEXT.sub(b"", name).decode("ascii").lower()
        if key in wanted:
            result.append((key, re.sub(rb"\r?\n", b"", value).strip()))
    return result


def _address_like(value: str) -> list[str]:
    """Address-looking text anywhere in the field, encoded words decoded."""
    try:
        text = str(make_header(decode_header(value)))
    except (ValueError, LookupError, email_errors.HeaderParseError):
        text = value
    tokens: list[str] = []
    for source in (value, text):
        normal = unicodedata.normalize("NFKC", source)
        tokens += [t.strip(".'\"") for t in _ADDRESS_LIKE.findall(normal)]
    return [t for t in tokens if "@" in t.strip("@")]
