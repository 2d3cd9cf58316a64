"""Validation and normal forms of domains, local parts, user ids and addresses.

Normal forms are what the database stores and compares: domains in lower
case ASCII (IDNA, so 한국.kr is xn--3e0b707e.kr), local parts in lower case
(every mail system users know compares them case-insensitively). Every
refusal raises `InvalidName` with one line that says what is wrong.
"""

from __future__ import annotations

import re
import string
from encodings import idna

from nmail.directory.errors import InvalidName

# RFC 5321 section 4.5.3.1: a domain is at most 255 octets on the wire, which
# is 253 characters written out (no length octets, no root label).
MAX_DOMAIN = 253
MAX_LABEL = 63
MAX_LOCAL_PART = 64
# RFC 5321 caps a path at 256 octets including the angle brackets.
MAX_ADDRESS = 254

# IDNA treats these as label separators too (ideographic and full-width stops).
_DOTS = re.compile("[.\u3002\uff0e\uff61]")
_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
# User ids name a mail directory on disk and appear in shell scripts, so they
# are held to a plain set that needs no quoting anywhere.
_USERID = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")


def normalize_domain(text: str, *, require_dot: bool = True) -> str:
    """The ASCII lower-case form of a domain; raise InvalidName when malformed.

    `require_dot` refuses single-label names such as `localhost`, which
    cannot be a hosted domain nor a forwarding destination.
    """
    if not text:
        raise InvalidName("empty domain")
    if text.startswith("["):
        raise InvalidName(f"{text!r}: address literals are not supported, use a domain name")
    name = text[:-1] if text.endswith(".") else text
    labels = _DOTS.split(name)
    ascii_labels = [_ascii_label(label, text) for label in labels]
    result = ".".join(ascii_labels)
    if len(result) > MAX_DOMAIN:
        raise InvalidName(f"domain {text!r} is longer than {MAX_DOMAIN} characters")
    if require_dot and len(ascii_labels) < 2:
        raise InvalidName(f"domain {text!r} needs at least one dot (like example.com)")
    if ascii_labels[-1].isdigit():
        raise InvalidName(f"{text!r} is not a domain name (its last label is all digits)")
    return result


def _ascii_label(label: str, whole: str) -> str:
    if not label:
        raise InvalidName(f"domain {whole!r} has an empty label (a leading dot or two in a row)")
    if label.isascii():
        ascii_label = label.lower()
    else:
        try:
            ascii_label = idna.ToASCII(label).decode("ascii").lower()
        except UnicodeError:
            raise InvalidName(
                f"domain {whole!r}: label {label!r} is not a valid international name"
            ) from None
    if len(ascii_label) > MAX_LABEL:
        raise InvalidName(f"domain {whole!r}: a label is longer than {MAX_LABEL} characters")
    if not _LDH.fullmatch(ascii_label):
        raise InvalidName(
            f"domain {whole!r}: labels use letters, digits and inner hyphens only"
        )
    if ascii_label[2:4] == "--":
        if not ascii_label.startswith("xn--"):
            raise InvalidName(f"domain {whole!r}: label {label!r} has reserved hyphens")
        try:
            idna.ToUnicode(ascii_label)
        except UnicodeError:
            raise InvalidName(
                f"domain {whole!r}: label {label!r} is not valid punycode"
            ) from None
    return ascii_label


def display_domain(ascii_domain: str) -> str:
    """The Unicode form of a stored domain, for people (xn--3e0b707e.kr -> 한국.kr)."""
    labels = []
    for label in ascii_domain.split("."):
        try:
            labels.append(idna.ToUnicode(label) if label.startswith("xn--") else label)
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def normalize_local_part(text: str) -> str:
    """A local part (RFC 5321 dot-atom or quoted string, UTF-8 allowed) in lower case.

    A quoted string whose content is a valid dot-atom is the same mailbox as
    the dot-atom (RFC 5321 4.1.2), so it is returned unquoted.
    """
    if not text:
        raise InvalidName("empty local part (nothing before the @)")
    if text.startswith('"'):
        value = _unquote(text)
        canonical = value.lower() if _is_dot_atom(value) else _quote(value.lower())
    elif _is_dot_atom(text):
        canonical = text.lower()
    else:
        raise InvalidName(
            f"local part {text!r} is not valid (use letters, digits and !#$%&'*+-/=?^_`{{|}}~,"
            " with single dots between them, or quote it)"
        )
    if len(canonical.encode("utf-8")) > MAX_LOCAL_PART:
        raise InvalidName(f"local part {text!r} is longer than {MAX_LOCAL_PART} octets")
    return canonical


def _is_dot_atom(text: str) -> bool:
    if not text:
        return False
    for atom in text.split("."):
        if not atom:
            return False
        # RFC 6531 adds any non-ASCII UTF-8 character to atext.
        if not all(ch in _ATEXT or ord(ch) > 0x7F for ch in atom):
            return False
    return True


def _unquote(text: str) -> str:
    if len(text) < 2 or not text.endswith('"'):
        raise InvalidName(f"local part {text!r} has an unterminated quote")
    body = text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body) or not 32 <= ord(body[i + 1]) <= 126:
                raise InvalidName(f"local part {text!r} has a bad backslash escape")
            out.append(body[i + 1])
            i += 2
            continue
        if ch == '"' or (ord(ch) < 32 or ord(ch) == 127):
            raise InvalidName(f"local part {text!r} has a character that must be escaped")
        out.append(ch)
        i += 1
    if not out:
        raise InvalidName('empty local part ("")')
    return "".join(out)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def normalize_userid(text: str) -> str:
    """An account's user id in lower case: letters, digits, '.', '_' and '-'."""
    if not text:
        raise InvalidName("empty user id")
    userid = text.lower()
    if len(userid) > MAX_LOCAL_PART:
        raise InvalidName(f"user id {text!r} is longer than {MAX_LOCAL_PART} characters")
    if not userid.isascii() or not _USERID.fullmatch(userid) or ".." in userid:
        raise InvalidName(
            f"user id {text!r} is not valid: use letters, digits, '.', '_' and '-',"
            " starting and ending with a letter or digit"
        )
    return userid


def is_userid(local_part: str) -> bool:
    """Whether a normalized local part could name an account."""
    return (
        len(local_part) <= MAX_LOCAL_PART
        and local_part.isascii()
        and _USERID.fullmatch(local_part) is not None
        and ".." not in local_part
    )


def normalize_alias_name(text: str) -> str:
    """An alias local part: an ASCII dot-atom in lower case."""
    local = normalize_local_part(text)
    if local.startswith('"') or not local.isascii():
        raise InvalidName(
            f"alias name {text!r} is not valid: use ASCII letters, digits and"
            " !#$%&'*+-/=?^_`{|}~ with single dots"
        )
    return local


def split_address(text: str) -> tuple[str, str]:
    """Split at the last @ (a quoted local part may hold one); no normalization."""
    at = text.rfind("@")
    if at <= 0 or at == len(text) - 1:
        raise InvalidName(f"{text!r} is not an address (expected name@domain)")
    return text[:at], text[at + 1 :]


def normalize_address(text: str, *, require_dot: bool = False) -> str:
    """local@domain in normal form; raise InvalidName when malformed."""
    if not text:
        raise InvalidName("empty address")
    if any(ch.isspace() for ch in text) and not text.startswith('"'):
        raise InvalidName(f"address {text!r} contains white space")
    local, domain = split_address(text)
    result = f"{normalize_local_part(local)}@{normalize_domain(domain, require_dot=require_dot)}"
    if len(result.encode("utf-8")) > MAX_ADDRESS:
        raise InvalidName(f"address {text!r} is longer than {MAX_ADDRESS} octets")
    return result


def comparable_address(text: str) -> str:
    """`text` as the directory compares addresses: its normal form (IDNA, case), or in
    lower case when it has none (an address literal, a local part no mailbox can have)."""
    try:
        return normalize_address(text)
    except InvalidName:
        return text.lower()


def comparable_domain(text: str) -> str:
    """`text` (a host name) in the normal form addresses are compared in, or in
    lower case without a final dot when it is not a domain name."""
    try:
        return normalize_domain(text, require_dot=False)
    except InvalidName:
        return text.lower().rstrip(".")


def normalize_sender_pattern(text: str) -> str:
    """A reject-list pattern: a full address, or @domain for a whole domain."""
    if text.startswith("@"):
        return "@" + normalize_domain(text[1:])
    return normalize_address(text, require_dot=True)
