"""The purge area: where a deleted account's mailbox goes, aside from the live tree.

A mailbox left at `mail/<domain>/<userid>` after its account is deleted is
picked up again by the next account of that name: the mail store indexes
the files it finds when it creates a mailbox, so a re-created account read
the previous owner's mail. Deleting the files at once is what an admin
regrets a day later. So a deleted account's directory is renamed (atomic,
same file system) to `mail/.purge/<UTC time>-<userid>@<domain>`, which no
account can name (domains never start with a dot), and removed for good
only when the admin says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from nmail.directory.errors import DirectoryError

PURGE_DIR = ".purge"


class PurgeError(DirectoryError):
    """A mailbox could not be moved aside or removed; the text says where it is."""


def account_dir(mail_dir: Path, domain: str, userid: str) -> Path:
    """DIR/mail/<domain>/<userid>: everything of one account's mail."""
    return mail_dir / domain / userid


def move_aside(mail_dir: Path, domain: str, userid: str, now: float) -> Path | None:
    """Rename the account's directory into the purge area; its new path, None when none."""
    source = account_dir(mail_dir, domain, userid)
    if not source.exists() and not source.is_symlink():
        return None
    area = mail_dir / PURGE_DIR
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = area / f"{stamp}-{userid}@{domain}"
    try:
        area.mkdir(mode=0o700, exist_ok=True)
        for n in range(1, 1000):
            if not target.exists():
                break
            target = area / f"{stamp}-{userid}@{domain}.{n}"
        # The link itself moves when it is one: nothing outside is touched.
        os.rename(source, target)
        # Its time in the purge area counts from now (`waiting` reads it back).
        os.utime(target, (now, now), follow_symlinks=False)
    except OSError as exc:
        raise PurgeError(
            f"could not move {source} to {area}: {exc.strerror or exc}; move or remove it"
            " by hand before an account of that name is created again"
        ) from None
    return target


def remove(mail_dir: Path, path: Path) -> None:
    """Delete a directory of the purge area for good (never one outside it)."""
    area = (mail_dir / PURGE_DIR).resolve()
    if path.is_symlink():
        path.unlink()  # a link moved aside: remove the link, never what it points to
        return
    if area not in path.resolve().parents:
        raise PurgeError(f"{path} is not inside {area}; remove it by hand")
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise PurgeError(f"could not remove {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True, slots=True)
class PurgedMailbox:
    """One deleted account's mail waiting in the purge area."""

    path: Path
    moved_at: float  # when it was moved aside (the entry's mtime)
    size: int  # bytes of its files

    @property
    def name(self) -> str:
        return self.path.name


def waiting(mail_dir: Path) -> list[PurgedMailbox]:
    """What the purge area holds, oldest first."""
    area = mail_dir / PURGE_DIR
    if not area.is_dir():
        return []
    found = []
    for entry in area.iterdir():
        try:
            moved_at = entry.lstat().st_mtime
        except OSError:
            continue
        found.append(PurgedMailbox(entry, moved_at, _size(entry)))
    return sorted(found, key=lambda m: (m.moved_at, m.name))


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return 0
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # gone meanwhile
                total += (Path(root) / name).lstat().st_size
    return total
