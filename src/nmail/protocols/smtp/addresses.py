"""RFC 5321 paths and mailboxes: syntax, length limits, SMTPUTF8 (RFC 6531).

Everything here is pure and raises CommandError carrying the reply to send.

SMTPUTF8 lets any non-ASCII character into a mailbox, but an address is
text people read: C1 controls (U+0080-U+009F, e.g. the one-character CSI)
drive terminals, and bidi overrides/isolates/marks (U+202A-U+202E,
U+2066-U+2069, U+200E/U+200F, U+061C) make `moc.live@` read as `@evil.com`
in every list, log and header that shows the address. They are refused
before anything stores them, like C0 controls; so are the other invisible
format characters (Unicode category Cf, e.g. U+2060, U+FEFF), private-use
characters, lone surrogates and the line and paragraph separators, except
the joiners U+200C/U+200D that scripts such as Devanagari and emoji
sequences need. Unassigned code points pass (a newer Unicode may assign them).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from nmail.protocols.smtp.replies import CommandError, reply

MAX_LOCAL_PART = 64  # octets, RFC 5321 4.5.3.1.1
MAX_DOMAIN = 255  # octets, RFC 5321 4.5.3.1.2
MAX_PATH = 256  # octets including the angle brackets, RFC 5321 4.5.3.1.3

_U = "\u0080-\U0010ffff"  # UTF8-non-ascii (RFC 6531 3.3)
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_DOT_STRING = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
_DOT_STRING_UTF8 = re.compile(rf"[{_ATEXT}{_U}]+(?:\.[{_ATEXT}{_U}]+)*\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")
_LABEL_UTF8 = rf"[A-Za-z0-9{_U}](?:[A-Za-z0-9{_U}-]{{0,61}}[A-Za-z0-9{_U}])?"
_DOMAIN_UTF8 = re.compile(rf"{_LABEL_UTF8}(?:\.{_LABEL_UTF8})*\Z")
# EHLO names from real clients: Windows machines send host names with "_".
_HELO_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HELO_DOMAIN = re.compile(rf"{_HELO_LABEL}(?:\.{_HELO_LABEL})*\Z")
_QTEXT_ASCII = re.compile(r"[\x20-\x7e]*\Z")
_JOINERS = frozenset("\u200c\u200d")
_REFUSED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Zl", "Zp"))


def is_domain(text: str, *, utf8: bool = False) -> bool:
    """True for a syntactically valid domain name (U-labels allowed with utf8)."""
    if not text or len(text.encode("utf-8")) > MAX_DOMAIN:
        return False
    pattern = _DOMAIN_UTF8 if utf8 and not text.isascii() else _DOMAIN
    return pattern.match(text) is not None


def is_address_literal(text: str) -> bool:
    """True for [IPv4] or [IPv6:addr] (RFC 5321 4.1.3)."""
    if len(text) < 3 or text[0] != "[" or text[-1] != "]":
        return False
    inner = text[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(inner[5:])
        else:
            ipaddress.IPv4Address(inner)
    except ValueError:
        return False
    return True


def parse_helo_domain(text: str) -> str:
    """Check the argument of EHLO/HELO: a domain or an address literal."""
    text = text.strip()
    if not text:
        raise CommandError(reply(501, "5.5.4", "Syntax: EHLO hostname"))
    if is_address_literal(text) or (
        text.isascii() and len(text) <= MAX_DOMAIN and _HELO_DOMAIN.match(text)
    ):
        return text
    raise CommandError(reply(501, "5.5.2", "Invalid domain name in EHLO/HELO"))


def split_path(text: str) -> tuple[str, str]:
    """Split '<path> params' into the text between the brackets and the rest."""
    text = text.lstrip(" ")
    if not text.startswith("<"):
        raise CommandError(reply(501, "5.5.4", "Syntax: address must be in angle brackets"))
    end = text.find(">")
    quote = text.find('"', 0, end if end >= 0 else len(text))
    if quote >= 0:
        end = _closing_bracket(text)
    if end < 0:
        raise CommandError(reply(501, "5.5.4", "Syntax: missing '>' after the address"))
    rest = text[end + 1 :]
    if rest and not rest.startswith(" "):
        raise CommandError(reply(501, "5.5.4", "Syntax: expected a space after the address"))
    return text[1:end], rest.strip(" ")


def _closing_bracket(text: str) -> int:
    """Index of the '>' closing a path that contains a quoted local part."""
    in_quotes = False
    i = 1
    while i < len(text):
        ch = text[i]
        if in_quotes:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == ">":
            return i
        i += 1
    return -1


def parse_mailbox(path: str, *, utf8: bool, recipient: bool) -> str:
    """The mailbox of a path (source route stripped), normalized as local@domain.

    Raises CommandError: 501 for bad syntax, 553 for over-long parts, 553 5.6.7
    for a non-ASCII address without SMTPUTF8.
    """
    status = "5.1.3" if recipient else "5.1.7"
    what = "recipient" if recipient else "sender"
    if len(path.encode("utf-8")) + 2 > MAX_PATH:
        raise CommandError(reply(553, status, f"Path too long ({what} address)"))
    if not utf8 and not path.isascii():
        raise CommandError(reply(553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter"))
    if not path.isascii() and _has_unseen_character(path):
        raise CommandError(reply(
            501, status, f"Bad {what} address syntax (control or bidi character)"))
    if path.startswith("@"):
        path = _strip_source_route(path, status, what)
    if path.startswith('"'):
        local, domain = _split_quoted(path, utf8, status, what)
    else:
        local, at, domain = path.rpartition("@")
        if not at:
            raise CommandError(reply(501, status, f"Bad {what} address syntax"))
        pattern = _DOT_STRING_UTF8 if utf8 else _DOT_STRING
        if not pattern.match(local):
            raise CommandError(reply(501, status, f"Bad {what} address syntax"))
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise CommandError(reply(553, status, f"Local part too long ({what} address)"))
    if domain.endswith(".") and not domain.endswith("..") and not domain.startswith("["):
        # "user@example.com." (the absolute form): the same domain, as Postfix takes it.
        domain = domain[:-1]
    if len(domain.encode("utf-8")) > MAX_DOMAIN:
        raise CommandError(reply(553, status, f"Domain too long ({what} address)"))
    if is_domain(domain, utf8=utf8):
        domain = domain.lower()
    elif not is_address_literal(domain):
        raise CommandError(reply(501, status, f"Bad {what} address syntax (domain)"))
    return f"{local}@{domain}"


def _has_unseen_character(text: str) -> bool:
    """A non-ASCII control, bidi or other invisible format character (module docstring)."""
    return any(
        not ch.isascii() and ch not in _JOINERS
        and unicodedata.category(ch) in _REFUSED_CATEGORIES
        for ch in text
    )


def _strip_source_route(path: str, status: str, what: str) -> str:
    """Drop '@a,@b:' (RFC 5321 4.1.1.3: accept it, ignore it)."""
    route, colon, mailbox = path.partition(":")
    if not colon:
        raise CommandError(reply(501, status, f"Bad {what} address syntax (source route)"))
    for hop in route.split(","):
        if not hop.startswith("@") or not (is_domain(hop[1:]) or is_address_literal(hop[1:])):
            raise CommandError(reply(501, status, f"Bad {what} address syntax (source route)"))
    return mailbox


def _split_quoted(path: str, utf8: bool, status: str, what: str) -> tuple[str, str]:
    """Parse '"quoted local"@domain'; unquote when the content is a plain dot-string."""
    chars: list[str] = []
    i = 1
    while i < len(path):
        ch = path[i]
        if ch == "\\":
            if i + 1 >= len(path):
                break
            chars.append(path[i + 1])
            i += 2
            continue
        if ch == '"':
            break
        chars.append(ch)
        i += 1
    else:
        raise CommandError(reply(501, status, f"Bad {what} address syntax (quotes)"))
    if i >= len(path) or path[i] != '"' or path[i + 1 : i + 2] != "@":
        raise CommandError(reply(501, status, f"Bad {what} address syntax (quotes)"))
    content = "".join(chars)
    allowed = content.isprintable() if utf8 else _QTEXT_ASCII.match(content) is not None
    if not allowed:
        raise CommandError(reply(501, status, f"Bad {what} address syntax (quotes)"))
    domain = path[i + 2 :]
    pattern = _DOT_STRING_UTF8 if utf8 else _DOT_STRING
    if pattern.match(content):
        return content, domain
    escaped = content.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"', domain
