"""Where an account's Maildir++ folders live, and the `nmail-uidvalidity` file.

`<mail_dir>/<domain>/<userid>/Maildir` is INBOX; other folders are
`Maildir/.<levels>` (folder_names). Names that could leave `mail_dir` are refused here, even
though the directory has validated them already.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nmail.durable import fsync_dir
from nmail.mailstore.folder_names import check_name, disk_name, name_from_disk

UIDVALIDITY_FILE = "nmail-uidvalidity"
SUBDIRS = ("tmp", "new", "cur")


class LayoutError(ValueError):
    """A domain, user id or folder name that cannot be a path segment."""


@dataclass(frozen=True, slots=True)
class UidState:
    """What `nmail-uidvalidity` records: the UIDVALIDITY and a floor for the next UID."""

    uidvalidity: int
    next_uid: int


def _check_segment(value: str, what: str) -> str:
    if (
        not value
        or len(value.encode("utf-8", "surrogateescape")) > 255
        or value.startswith(".")
        or "/" in value
        or "\\" in value
        or "\0" in value
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    ):
        raise LayoutError(f"unusable {what} {value!r}")
    return value


def maildir_path(mail_dir: Path, domain: str, userid: str) -> Path:
    """The account's Maildir (its INBOX); LayoutError for names that could escape."""
    domain_dir = mail_dir / _check_segment(domain, "domain")
    return domain_dir / _check_segment(userid, "user id") / "Maildir"


def folder_dir(maildir: Path, name: str) -> Path:
    """The directory of one folder (INBOX is the Maildir itself); BadFolderName if unusable."""
    entry = disk_name(check_name(name))
    return maildir / entry if entry else maildir


def make_folder_dirs(maildir: Path, names: Iterable[str]) -> list[Path]:
    """Create tmp/new/cur of each folder (and `maildirfolder` in subfolders).

    Every directory created, the Maildir's parents included, is made durable
    by one fsync of each parent: a delivery's later fsync of new/ does not
    cover the directories above it. Returns the folder directories.
    """
    paths = [folder_dir(maildir, name) for name in names]
    created: list[Path] = []
    for path in paths:
        for sub in SUBDIRS:
            _make_dir(path / sub, created)
        if path != maildir and not (path / "maildirfolder").exists():
            (path / "maildirfolder").touch(mode=0o600)
    # Deepest first, so each entry is durable before the one pointing to it.
    for parent in sorted({p.parent for p in created}, key=lambda p: -len(p.parts)):
        fsync_dir(parent)
    return paths


def make_dirs_at(path: Path) -> list[Path]:
    """One folder's directory with tmp/new/cur and `maildirfolder`, flushed;
    returns [path] when it was made here (to remove if the creation fails)."""
    fresh = not path.exists()
    created: list[Path] = []
    for sub in SUBDIRS:
        _make_dir(path / sub, created)
    marker = path / "maildirfolder"
    if not marker.exists():
        marker.touch(mode=0o600)
    for parent in sorted({p.parent for p in created}, key=lambda p: -len(p.parts)):
        fsync_dir(parent)
    return [path] if fresh else []


def _make_dir(path: Path, created: list[Path]) -> None:
    if path.is_dir():
        return
    if not path.parent.is_dir():
        _make_dir(path.parent, created)
    try:
        path.mkdir(mode=0o700)
        created.append(path)
    except FileExistsError:
        if not path.is_dir():
            raise


def disk_folder_names(maildir: Path) -> list[str]:
    """INBOX plus the API name of every `.<levels>` subdirectory that is a Maildir folder."""
    names = ["INBOX"] if maildir.is_dir() else []
    try:
        entries = sorted(os.listdir(maildir))
    except FileNotFoundError:
        return names
    found = []
    for entry in entries:
        name = name_from_disk(entry)
        if name is None:
            continue
        sub = maildir / entry
        if (sub / "cur").is_dir() or (sub / "new").is_dir():
            found.append(name)
    return names + sorted(found)


def read_uid_state(path: Path) -> UidState | None:
    """The folder's `nmail-uidvalidity`, or None when missing or unreadable."""
    try:
        text = (path / UIDVALIDITY_FILE).read_text(encoding="ascii")
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    parts = text.split()
    if not parts or not parts[0].isdigit() or not 0 < int(parts[0]) < 2**32:
        return None
    next_uid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 1
    return UidState(int(parts[0]), max(next_uid, 1))


def write_uid_state(path: Path, state: UidState, *, durable: bool = True) -> None:
    """Replace `nmail-uidvalidity` atomically (and durably unless told otherwise)."""
    tmp = path / f"{UIDVALIDITY_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    data = f"{state.uidvalidity} {state.next_uid}\n".encode("ascii")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path / UIDVALIDITY_FILE)
    if durable:
        fsync_dir(path)
