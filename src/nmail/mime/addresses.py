"""Address-list headers (From, To, Cc...) to (display name, address) pairs, never raising."""

from __future__ import annotations

import re

from nmail.mime.encoded_words import decode_encoded_words
from nmail.mime.raw_header import clean_text, header_text

MAX_ADDRESSES = 1000  # more recipients than this in one header are not listed
_MAX_INPUT = 256 * 1024  # characters of one header value looked at
_TOKEN = re.compile(
    r"""(?P<separator>[,;])
      |(?P<quoted>"[^"\\]*(?:\\.[^"\\]*)*"?)
      |(?P<comment>\()
      |(?P<angle><[^>]*>?)
      |(?P<colon>:)
      |(?P<word>[^\s,;"(<>:)]+)""",
    re.VERBOSE | re.DOTALL,
)
_ATOMS = r"[^\s\",;:<>()\\\[\]@]"
_ONE_MAILBOX = re.compile(
    rf"""\s*(?:(?:"([^"\\]*)"|({_ATOMS}+(?:\s+{_ATOMS}+)*))?\s*<({_ATOMS}+@{_ATOMS}+)>
           |({_ATOMS}+@{_ATOMS}+))\s*""",
    re.VERBOSE,
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_SPECIALS = re.compile(r'[,;:<>"@()\[\]\\]')
_ROUTE = re.compile(r"^(?:\s*@[^,:]*[,:])+")  # obsolete source route "@a,@b:" in <...>


class _Mailbox:
    """Pieces of one mailbox while its text is being scanned."""

    __slots__ = ("angle", "comments", "phrase")

    def __init__(self) -> None:
        self.phrase: list[str] = []
        self.comments: list[str] = []
        self.angle: str | None = None

    def finish(self) -> tuple[str, str] | None:
        """(name, address), or None when nothing usable was written."""
        phrase = " ".join(filter(None, self.phrase))  # empty quoted strings dropped
        comment = " ".join(self.comments)
        if self.angle is not None:
            address = self.angle
            if address.lstrip().startswith("@"):
                address = _ROUTE.sub("", address)
            address = address.strip()
            if '"' not in address:
                address = "".join(address.split())  # "<a @ b>" was meant as "a@b"
            name = phrase or comment
        else:
            # No <...>: "a@b", "a@b (Name)", or junk like "Name a@b".
            words = phrase.split()
            at = next((index for index, word in enumerate(words) if "@" in word), None)
            if at is not None:
                address = words[at]
                name = " ".join(words[:at] + words[at + 1:]) or comment
            elif len(words) == 1:
                address, name = words[0], comment
            else:
                address, name = "", phrase or comment
        name = _display_name(name)
        address = clean_text(address).strip("<>\"' ")
        if not name and not address:
            return None
        return name, address


def parse_addresses(value: bytes | str) -> list[tuple[str, str]]:
    """[(display name, address)] from an address-list header; junk is skipped, never raises.

    Group syntax (`team: a@b, c@d;`) yields the members; encoded words in
    names (also inside quotes) and raw 8-bit names are decoded.
    """
    text = header_text(value)[:_MAX_INPUT]
    simple = _ONE_MAILBOX.fullmatch(text)
    if simple is not None:  # the usual From: shapes, without the tokenizer
        quoted, phrase, angle, bare = simple.groups()
        address = (angle if bare is None else bare).strip()
        return [(_display_name(quoted if quoted is not None else phrase or ""), address)]
    result: list[tuple[str, str]] = []
    current = _Mailbox()
    position = 0
    while len(result) < MAX_ADDRESSES:
        token = _TOKEN.search(text, position)
        if token is None:
            break
        kind = token.lastgroup
        position = token.end()
        if kind == "separator":
            _add(result, current)
            current = _Mailbox()
        elif kind == "quoted":
            current.phrase.append(_unquote(token.group(kind)[1:].removesuffix('"')))
        elif kind == "comment":
            position = _read_comment(text, token.start(), current)
        elif kind == "angle":
            if current.angle is None:
                current.angle = token.group(kind)[1:].removesuffix(">")
        elif kind == "colon":
            if current.angle is None and not any("@" in word for word in current.phrase):
                current = _Mailbox()  # "group name:" introduces the members
        elif kind == "word":
            current.phrase.append(token.group(kind))
    _add(result, current)
    return result[:MAX_ADDRESSES]


def format_addresses(pairs: list[tuple[str, str]]) -> str:
    """Display text: `Name <a@b>, c@d`; names with specials are quoted."""
    shown: list[str] = []
    for name, address in pairs:
        if name and address:
            if _SPECIALS.search(name):
                name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            shown.append(f"{name} <{address}>")
        else:
            shown.append(name or address)
    return ", ".join(shown)


def _display_name(name: str) -> str:
    """A display name as shown: encoded words decoded, stray quotes dropped."""
    if not name:
        return ""  # most addresses have none
    return clean_text(decode_encoded_words(name)).strip("\"' ")


def _unquote(text: str) -> str:
    """Quoted pairs (backslash and a character) to the character."""
    return _QUOTED_PAIR.sub(r"\1", text) if "\\" in text else text


def _add(result: list[tuple[str, str]], mailbox: _Mailbox) -> None:
    finished = mailbox.finish()
    if finished is not None:
        result.append(finished)


def _read_comment(text: str, position: int, mailbox: _Mailbox) -> int:
    """Read a (possibly nested) comment starting at `position`; return where it ends."""
    depth = 0
    start = position + 1
    end = len(text)
    while position < end:
        char = text[position]
        if char == "\\":
            position += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                break
        position += 1
    mailbox.comments.append(_unquote(text[start:min(position, end)]).strip())
    return position + 1
