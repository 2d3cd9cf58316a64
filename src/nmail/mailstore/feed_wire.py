"""The change feed's wire: one text line per message, sans I/O.

Lines, not marshal or JSON: a change is four numbers' worth of facts and a
folder name, the hub writes one encoding of each change to every subscriber,
and a line protocol can be read by anyone debugging with `socat`. Folder
names are percent-encoded (UTF-8), so no name can break a line.

    H <hub id>                                       hub -> client, on connect
    E <account> <folder id> <modseq> <kind> <name>   a change (hub -> client)
    P <account> <folder id> <modseq> <kind> <name>   a change to publish (client -> hub)
    R                                                hub -> client: events may be lost, resync

The same `<account> ... <name>` text, after the sender's origin id, is the
payload of a PostgreSQL NOTIFY (see feed_postgres).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote

MAX_LINE = 4096
KINDS = frozenset({
    "deliver", "append", "flags", "copy", "move", "expunge",
    "folder-create", "folder-rename", "folder-delete", "subscribe",
})
_KIND = re.compile(r"[a-z][a-z-]{0,31}")


SECRET_NAME = "feed.secret"


def feed_address(data_dir: Path) -> str:
    """The hub's socket: abstract (no file to go stale), named after the data directory.

    Every process of one installation (workers, the web app, the CLI) finds
    it from the data directory alone; two installations never share one. The
    name also hashes a secret kept in the data directory (made on first use,
    mode 0600): an abstract name has no file permissions, and another local
    user who could compute it could bind it before `nmail serve` does.
    """
    base = Path(data_dir).resolve()
    digest = hashlib.sha256(os.fsencode(base) + b"\0" + _secret(base)).hexdigest()[:24]
    return f"\0nmail-feed-{digest}"


def _secret(base: Path) -> bytes:
    """The data directory's feed secret, made if missing; b"" if it cannot be."""
    path = base / SECRET_NAME
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError:
        return b""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return _read_when_written(path)
    except OSError:
        return b""  # no data directory yet, or read-only: the path alone names it
    secret = os.urandom(32).hex().encode()
    try:
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    return secret


def _read_when_written(path: Path) -> bytes:
    for _ in range(100):  # its maker writes 64 bytes right after creating it
        try:
            data = path.read_bytes()
        except OSError:
            return b""
        if len(data) == 64:
            return data
        time.sleep(0.01)
    return path.read_bytes()


class WireError(ValueError):
    """A line that is not the feed's."""


@dataclass(frozen=True, slots=True)
class Change:
    """One folder's change in one commit, as subscribers get it."""

    account_id: int
    folder_id: int
    folder: str  # API name ("INBOX", "거래처/2026"); the new one after a rename
    modseq: int  # the folder's HIGHESTMODSEQ after the commit (0 for folder-delete)
    kind: str  # deliver, flags, copy, move, expunge, folder-create, ... (KINDS)


class FolderChangeLike(Protocol):
    """What the mail store's commit hook reports (commit_hook.FolderChange)."""

    @property
    def account_id(self) -> int: ...
    @property
    def folder_id(self) -> int: ...
    @property
    def folder(self) -> str: ...
    @property
    def highest_modseq(self) -> int: ...
    @property
    def kind(self) -> str: ...


def from_commit(change: FolderChangeLike) -> Change:
    """The feed's Change for one of the commit hook's FolderChanges."""
    return Change(int(change.account_id), int(change.folder_id), str(change.folder),
                  int(change.highest_modseq), str(change.kind))


def change_text(change: Change) -> str:
    """`<account> <folder id> <modseq> <kind> <name>` (no newline)."""
    return (f"{change.account_id} {change.folder_id} {change.modseq} {change.kind} "
            f"{quote(change.folder, safe='/')}")


def parse_change(text: str) -> Change:
    """The inverse of change_text; WireError if it is not one."""
    parts = text.split(" ")
    if len(parts) != 5:
        raise WireError("a change has five fields")
    account, folder_id, modseq, kind, name = parts
    if not (account.isdigit() and folder_id.isdigit() and modseq.isdigit()):
        raise WireError("a change's numbers are decimal")
    if not _KIND.fullmatch(kind):
        raise WireError("bad change kind")
    if len(account) > 19 or len(folder_id) > 19 or len(modseq) > 19:
        raise WireError("number out of range")
    return Change(int(account), int(folder_id), unquote(name, errors="replace"), int(modseq),
                  kind)


def event_line(change: Change) -> bytes:
    return b"E " + change_text(change).encode() + b"\n"


def publish_line(change: Change) -> bytes:
    return b"P " + change_text(change).encode() + b"\n"


RESYNC_LINE = b"R\n"


def hello_line(hub_id: str) -> bytes:
    return b"H " + hub_id.encode() + b"\n"


class LineReader:
    """Splits a byte stream into the lines above; WireError on an oversized line."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """(letter, rest) of every complete line in `data` and what came before."""
        self._buffer += data
        out: list[tuple[str, str]] = []
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end < 0:
                break
            raw = bytes(self._buffer[start:end])
            start = end + 1
            try:
                line = raw.decode("ascii")
            except UnicodeDecodeError:
                raise WireError("a feed line is ASCII") from None
            letter, _, rest = line.partition(" ")
            out.append((letter, rest))
        del self._buffer[:start]
        if len(self._buffer) > MAX_LINE:
            raise WireError("line too long")
        return out
