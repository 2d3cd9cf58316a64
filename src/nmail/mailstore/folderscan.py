"""Reading a folder directory: its message files, stale tmp files, foreign files' bytes."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmail.mailstore.indexrow import has_dot_line, summarize, summary_columns
from nmail.mailstore.names import DiskName, parse_disk_name

log = logging.getLogger(__name__)

STALE_TMP_SECONDS = 36 * 3600  # the Maildir convention for leftovers in tmp/
# `nmail-uidvalidity` and `dovecot-keywords` are replaced through a
# `<name>.<pid>[.<thread>].tmp` beside them, renamed milliseconds after it is
# written: one an hour old is what a kill -9 in between left.
STATE_FILES = ("nmail-uidvalidity.", "dovecot-keywords.")
STALE_STATE_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class DiskFile:
    """A message file found in new/ or cur/."""

    parsed: DiskName
    in_new: bool

    @property
    def sub(self) -> str:
        return "new" if self.in_new else "cur"


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What indexing a file needs from its bytes (read before taking the lock)."""

    size: int  # after CRLF conversion
    needs_crlf: bool  # has bare LF line ends (a foreign file)
    internal_date: int  # the file's mtime
    columns: dict[str, Any]


def scan_messages(folder_dir: Path) -> dict[str, DiskFile]:
    """Message files of new/ and cur/, by index filename (cur/ wins a duplicate)."""
    found: dict[str, DiskFile] = {}
    for sub, in_new in (("new", True), ("cur", False)):
        try:
            with os.scandir(folder_dir / sub) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                        continue
                    parsed = parse_disk_name(entry.name)
                    if parsed.filename in found and in_new is False:
                        log.warning("%s is in both new/ and cur/ of %s", parsed.filename,
                                    folder_dir)
                    found[parsed.filename] = DiskFile(parsed, in_new)
        except FileNotFoundError:
            continue
    return found


def remove_stale_tmp(folder_dir: Path, now: float) -> int:
    """Delete tmp/ files a crash left behind (never acknowledged), and the
    half-made state files beside them; returns how many."""
    removed = _remove_stale_state(folder_dir, now)
    try:
        with os.scandir(folder_dir / "tmp") as entries:
            for entry in entries:
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if entry.stat(follow_symlinks=False).st_mtime < now - STALE_TMP_SECONDS:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        pass
    return removed


def _remove_stale_state(folder_dir: Path, now: float) -> int:
    removed = 0
    try:
        with os.scandir(folder_dir) as entries:
            for entry in entries:
                if not (entry.name.endswith(".tmp") and entry.name.startswith(STATE_FILES)):
                    continue
                try:
                    if (entry.is_file(follow_symlinks=False)
                            and entry.stat(follow_symlinks=False).st_mtime
                            < now - STALE_STATE_SECONDS):
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        pass
    return removed


def has_bare_lf(data: bytes) -> bool:
    return data.count(b"\n") != data.count(b"\r\n")


def to_crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def read_facts(path: Path) -> FileFacts | None:
    """Read and summarize one file; None when it vanished meanwhile."""
    try:
        data = path.read_bytes()
        mtime = int(path.stat().st_mtime)
    except FileNotFoundError:
        return None
    needs_crlf = has_bare_lf(data)
    if needs_crlf:
        data = to_crlf(data)
    columns = summary_columns(summarize(data), mtime, has_dot_line(data))
    return FileFacts(len(data), needs_crlf, mtime, columns)
