"""Folder names: the API's "/" names, checked, and their Maildir++ directories.

The API names folders as IMAP clients and the webmail show them: Unicode,
"/" between levels ("거래처/2026"). On disk a folder is one directory of the
Maildir, `.` + the levels joined by "." + each level in IMAP modified UTF-7
(RFC 3501 5.1.3), as Dovecot's and Courier's Maildir++ layout writes them:
`.&rBiCWNyY-.2026`. So other Maildir tools read the tree, and a name never
holds a byte a file system could take for something else.

Because "." separates levels on disk, a level cannot contain "."; because
the whole path is one directory entry, its encoded form is at most 255 bytes.
INBOX (any case) is the Maildir itself and has no subfolders.
"""

from __future__ import annotations

import base64
import unicodedata

from nmail.mailstore.model import BadFolderName

SEPARATOR = "/"
INBOX = "INBOX"
MAX_DEPTH = 16
MAX_DISK_NAME = 255  # NAME_MAX of the directory `.<levels>`
_FORBIDDEN = frozenset("\\*%")  # IMAP LIST wildcards, and a path separator elsewhere


def check_name(name: object) -> str:
    """The canonical API name (INBOX upper case, NFC); BadFolderName says why not."""
    if not isinstance(name, str):
        raise BadFolderName("a folder name must be text")
    if not name:
        raise BadFolderName("a folder name cannot be empty")
    if name.upper() == INBOX:
        return INBOX
    name = unicodedata.normalize("NFC", name)
    if name.startswith(SEPARATOR) or name.endswith(SEPARATOR):
        raise BadFolderName(f"folder name {name!r} starts or ends with '/'")
    levels = name.split(SEPARATOR)
    if len(levels) > MAX_DEPTH:
        raise BadFolderName(f"folder name {name!r} is nested deeper than {MAX_DEPTH} levels")
    if levels[0].upper() == INBOX:
        raise BadFolderName("INBOX cannot have subfolders")
    for level in levels:
        _check_level(name, level)
    if len(disk_name(name)) > MAX_DISK_NAME:
        raise BadFolderName(f"folder name {name!r} is too long (over {MAX_DISK_NAME} bytes)")
    return name


def _check_level(name: str, level: str) -> None:
    if not level:
        raise BadFolderName(f"folder name {name!r} has an empty level ('//')")
    if level in (".", ".."):
        raise BadFolderName(f"folder name {name!r} has a level {level!r}")
    if "." in level:
        raise BadFolderName(f"folder name {name!r} contains '.' (the Maildir++ separator)")
    for ch in level:
        if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in _FORBIDDEN:
            raise BadFolderName(f"folder name {name!r} contains the character {ch!r}")
        if 0xD800 <= ord(ch) <= 0xDFFF:
            raise BadFolderName(f"folder name {name!r} is not valid Unicode")


def parent_of(name: str) -> str | None:
    """The parent's API name, None for a top-level folder."""
    head, sep, _ = name.rpartition(SEPARATOR)
    return head if sep else None


def is_within(name: str, ancestor: str) -> bool:
    """Whether `name` is `ancestor` or below it."""
    return name == ancestor or name.startswith(ancestor + SEPARATOR)


def disk_name(name: str) -> str:
    """The folder's directory under the Maildir ("" for INBOX): `.Level.Level`."""
    if name == INBOX:
        return ""
    return "." + ".".join(encode_mutf7(level) for level in name.split(SEPARATOR))


def name_from_disk(entry: str) -> str | None:
    """The API name of a Maildir entry `.A.B`; None when it is no folder of ours."""
    if not entry.startswith(".") or entry in (".", ".."):
        return None
    try:
        name = SEPARATOR.join(decode_mutf7(level) for level in entry[1:].split("."))
        canonical = check_name(name)
    except (BadFolderName, ValueError):
        return None
    if canonical == INBOX or disk_name(canonical) != entry:
        return None  # a second spelling of a name (or INBOX itself): not a folder
    return canonical


def encode_mutf7(text: str) -> str:
    """IMAP modified UTF-7: printable ASCII as itself ("&" as "&-"), the rest in &...-."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ","))
            out.append("-")
            pending.clear()

    for ch in text:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode_mutf7(text: str) -> str:
    """The inverse of encode_mutf7; ValueError for anything it would not write."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if not 0x20 <= ord(ch) <= 0x7E:
            raise ValueError("modified UTF-7 holds printable ASCII only")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise ValueError("unterminated &-sequence")
        chunk = text[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
            decoded = raw.decode("utf-16-be")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"bad &-sequence: {exc}") from None
        if any(0x20 <= ord(c) <= 0x7E for c in decoded):
            raise ValueError("printable ASCII inside an &-sequence")
        out.append(decoded)
    return "".join(out)
