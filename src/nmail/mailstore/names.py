"""Maildir file names: unique names, the U=/S= fields, flag letters, IMAP flags.

A file is `<base>,U=<uid>,S=<size>[:2,<letters>]`. `<base>` (before the first
`,`) is the message's permanent unique name and POP3 UIDL; everything before
`:` is what the index stores as `filename`.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from dataclasses import dataclass
from typing import Protocol

# IMAP system flags and their Maildir info letters (maildir spec, Dovecot).
FLAG_LETTERS = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
LETTER_FLAGS = {letter: flag for flag, letter in FLAG_LETTERS.items()}
# The system flags as bits of messages.sysflags (an unseen count or list
# reads the bits through an index, never the flag text).
SYSTEM_BITS = {
    "\\Seen": 1,
    "\\Answered": 2,
    "\\Flagged": 4,
    "\\Deleted": 8,
    "\\Draft": 16,
}
SEEN_BIT = 1
_SYSTEM_BY_LOWER = {flag.lower(): flag for flag in FLAG_LETTERS}

# RFC 3501 atom-specials (plus "]" for flag-keywords): not allowed in a keyword.
_ATOM_SPECIALS = frozenset('(){ %*"\\]')
MAX_FLAGS_TEXT = 255  # messages.flags is String(255)
MAX_UIDL = 70  # RFC 1939: a unique-id is 1 to 70 characters

_counter = itertools.count(1)
_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


# A forked child must not reuse the parent's pid in new names.
os.register_at_fork(after_in_child=_refresh_pid)


@dataclass(frozen=True, slots=True)
class DiskName:
    """One directory entry of new/ or cur/, taken apart."""

    name: str  # as found on disk
    filename: str  # before the ':' (what messages.filename holds)
    base: str  # before the first ',' (the UIDL for our own files)
    uid: int | None  # U=, when present and valid
    size: int | None  # S=, when present and valid
    letters: str  # Maildir flag letters after ':2,'


def host_token(hostname: str) -> str:
    """The hostname as it may appear in a unique name: printable, no '/', ':' or ','."""
    out = []
    for ch in hostname:
        if ch.isascii() and (ch.isalnum() or ch in "-._"):
            out.append(ch)
        else:
            # Maildir's convention for '/' and ':' (\057, \072), extended to the rest.
            out.append("".join(f"\\{b:03o}" for b in ch.encode("utf-8")))
    token = "".join(out) or "localhost"
    if len(token) > 32:
        # Keep the UIDL within POP3's 70 characters while staying distinct per host.
        digest = hashlib.blake2b(token.encode(), digest_size=4).hexdigest()
        token = f"{token[:23]}-{digest}"
    return token


def new_base(host: str, now: float | None = None) -> str:
    """A fresh unique base: `<secs>.M<usecs>P<pid>Q<n>.<host>` (host from host_token)."""
    stamp = time.time() if now is None else now
    secs = int(stamp)
    usecs = int((stamp - secs) * 1_000_000)
    return f"{secs}.M{usecs}P{_pid}Q{next(_counter)}.{host}"


def final_filename(base: str, uid: int, size: int) -> str:
    """The index's `filename` for a message: base plus the UID map fields."""
    return f"{base},U={uid},S={size}"


def disk_name(filename: str, letters: str, in_new: bool) -> str:
    """The directory entry: files in cur/ carry the ':2,' info, files in new/ do not."""
    return filename if in_new else f"{filename}:2,{letters}"


def parse_disk_name(name: str) -> DiskName:
    """Split a Maildir entry into filename, base, U=, S= and flag letters."""
    filename, _, info = name.partition(":")
    letters = info[2:] if info.startswith("2,") else ""
    fields = filename.split(",")
    uid: int | None = None
    size: int | None = None
    for field in fields[1:]:
        key, eq, value = field.partition("=")
        if not eq or not value.isascii() or not value.isdigit():
            continue
        if key == "U" and 0 < int(value) < 2**63:
            uid = int(value)
        elif key == "S" and int(value) < 2**63:
            size = int(value)
    return DiskName(name, filename, fields[0], uid, size, letters)


def is_clean_base(base: str) -> bool:
    """True when `base` can serve as a UIDL and a stored filename as it is."""
    return (
        0 < len(base) <= MAX_UIDL
        and all("\x21" <= ch <= "\x7e" for ch in base)
        and ":" not in base
        and "," not in base
        and "/" not in base
    )


def digest_base(base: str) -> str:
    """A stable, clean stand-in for a foreign base name that cannot be a UIDL."""
    raw = base.encode("utf-8", "surrogateescape")
    return "x" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def uidl_of(filename: str) -> str:
    """The POP3 UIDL of an indexed file: its name up to the first ','."""
    return filename.split(",", 1)[0]


def normalize_flags(flags: frozenset[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
    """Canonical spelling of IMAP flags; ValueError for a flag that is not an atom."""
    out: set[str] = set()
    for flag in flags:
        if flag.startswith("\\"):
            canonical = _SYSTEM_BY_LOWER.get(flag.lower())
            if canonical is None:
                raise ValueError(f"unknown system flag {flag!r}")
            out.add(canonical)
            continue
        if (
            not flag
            or len(flag) > 64
            or any(ch in _ATOM_SPECIALS or not "\x21" <= ch <= "\x7e" for ch in flag)
        ):
            raise ValueError(f"bad flag {flag!r}")
        out.add(flag)
    return frozenset(out)


def format_flags(flags: frozenset[str]) -> str:
    """The messages.flags text: space separated, sorted; ValueError when too long."""
    text = " ".join(sorted(flags))
    if len(text) > MAX_FLAGS_TEXT:
        raise ValueError("too many flags")
    return text


def parse_flags(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


def flag_bits(flags: frozenset[str]) -> int:
    """messages.sysflags for `flags` (keywords have no bit)."""
    bits = 0
    for flag in flags:
        bits |= SYSTEM_BITS.get(flag, 0)
    return bits


def flags_to_letters(flags: frozenset[str]) -> str:
    """Maildir info letters for the system flags, in ASCII order as the spec asks."""
    if not flags:
        return ""  # every delivery from outside: no generator, sort and join (~2k)
    return "".join(sorted(FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS))


def letters_to_flags(letters: str) -> frozenset[str]:
    return frozenset(LETTER_FLAGS[ch] for ch in letters if ch in LETTER_FLAGS)


def merge_letters(flags: frozenset[str], letters: str, keywords: KeywordMap) -> frozenset[str]:
    """Flags after another tool changed the letters on disk: the letters rule, and
    keywords without a letter (beyond the 26 that have one) stay."""
    lettered = keywords.flags_of(letters)
    unlettered = frozenset(f for f in flags if f not in FLAG_LETTERS
                           and not keywords.letters_of(frozenset({f})))
    return lettered | unlettered


class KeywordMap(Protocol):
    """keywords.KeywordLetters as merge_letters uses it."""

    def flags_of(self, letters: str) -> frozenset[str]: ...

    def letters_of(self, flags: frozenset[str], *, add: bool = False) -> str: ...
