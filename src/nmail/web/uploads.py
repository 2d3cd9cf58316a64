"""Attachments uploaded while a message is being written, kept until it is sent.

The compose page uploads each file as soon as it is chosen or dropped (so
the browser can show progress and the limit is checked before the user
presses Send); the form then names the uploads by token. Files live under
`DATA/webmail-uploads/<account id>/`, each as `<token>.bin` plus `<token>.json`
(name, type, size). A token is random, checked against a strict pattern and
only looked up under the uploader's own directory, so one user can never
name another's file. Blocking.

Uploads that are never sent (a tab closed mid-message) must not pile up:
files older than a day are swept on a schedule for every user
(`sweep_all`, run by web/upload_sweeper.py) and also before each upload of
the same user, and what one user may keep staged at once is bounded in
files and bytes (`UploadQuotaFull`), so a script cannot fill the disk with
uploads it never sends while staying under the per-message limit.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from nmail.directory.sizes import parse_size
from nmail.web.download_names import safe_filename

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")
_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
MAX_AGE = 24 * 3600
MAX_STAGED_FILES = 100  # one user's unsent uploads at once
STAGED_MESSAGES = 4  # ... and at most this many messages' worth of bytes
DEFAULT_LIMIT = 25 * 1024 * 1024
CHUNK = 256 * 1024


class UploadTooLarge(Exception):
    """The file (or all of a message's files together) is over the limit."""


class UploadQuotaFull(Exception):
    """The user already has too many unsent uploads: `reason` is "files" or "bytes"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Upload:
    token: str
    name: str  # safe display and file name
    content_type: str
    size: int


def attachment_limit(raw_config: dict[str, object], max_message_size: int) -> int:
    """Bytes of attachments one message may carry: `[web] max_attachment_size`.

    Base64 makes a file a third larger on the wire, so the limit is also kept
    under what `[smtp] max_message_size` lets through.
    """
    web = raw_config.get("web")
    text = web.get("max_attachment_size") if isinstance(web, dict) else None
    configured = parse_size(str(text)) if text is not None else DEFAULT_LIMIT
    wire_cap = max_message_size * 3 // 4 - 64 * 1024
    return max(0, min(configured or wire_cap, wire_cap))


class Uploads:
    def __init__(self, root: Path, clock: Callable[[], float] = time.time, *,
                 max_files: int = MAX_STAGED_FILES, max_bytes: int | None = None) -> None:
        self._root = root
        self._clock = clock
        self.max_files = max_files
        self.max_bytes = max_bytes  # None: STAGED_MESSAGES x the per-message limit

    def staged(self, account_id: int) -> tuple[int, int]:
        """(files, bytes) one user has uploaded and not yet sent."""
        files = size = 0
        try:
            entries = list(os.scandir(self._folder(account_id)))
        except OSError:
            return 0, 0
        for entry in entries:
            if entry.name.endswith(".bin"):
                try:
                    size += entry.stat().st_size
                except OSError:
                    continue
                files += 1
        return files, size

    def save(self, account_id: int, name: str, content_type: str,
             chunks: Iterable[bytes], limit: int, already: int = 0) -> Upload:
        """Store one upload; UploadTooLarge (nothing kept) past `limit` with `already` bytes,
        UploadQuotaFull when the user's unsent uploads would pass the staging bounds."""
        folder = self._folder(account_id)
        folder.mkdir(parents=True, exist_ok=True)
        self._sweep(folder)
        files, used = self.staged(account_id)
        room = (self.max_bytes if self.max_bytes is not None else STAGED_MESSAGES * limit) - used
        if files >= self.max_files:
            raise UploadQuotaFull("files")
        token = secrets.token_urlsafe(16)
        data_path = folder / f"{token}.bin"
        size = 0
        try:
            with data_path.open("xb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if already + size > limit:
                        raise UploadTooLarge
                    if size > room:
                        raise UploadQuotaFull("bytes")
                    out.write(chunk)
        except BaseException:
            data_path.unlink(missing_ok=True)
            raise
        kind = content_type.split(";")[0].strip().lower()
        upload = Upload(token, safe_filename(name), kind if _TYPE.match(kind) else
                        "application/octet-stream", size)
        meta = {"name": upload.name, "type": upload.content_type, "size": size}
        (folder / f"{token}.json").write_text(json.dumps(meta), encoding="utf-8")
        return upload

    def get(self, account_id: int, token: str) -> Upload | None:
        if not _TOKEN.match(token):
            return None
        try:
            meta = json.loads((self._folder(account_id) / f"{token}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return Upload(token, str(meta["name"]), str(meta["type"]), int(meta["size"]))

    def path(self, account_id: int, upload: Upload) -> Path:
        """The staged file (a send reads it a piece at a time: mime/compose_spool.py)."""
        return self._folder(account_id) / f"{upload.token}.bin"

    def remove(self, account_id: int, token: str) -> None:
        if _TOKEN.match(token):
            for suffix in (".bin", ".json"):
                (self._folder(account_id) / f"{token}{suffix}").unlink(missing_ok=True)

    def _folder(self, account_id: int) -> Path:
        return self._root / str(int(account_id))

    def _sweep(self, folder: Path) -> int:
        cutoff = self._clock() - MAX_AGE
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return 0
        removed = 0
        for entry in entries:
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
        return removed

    def sweep_all(self) -> int:
        """Remove every user's uploads older than MAX_AGE; how many files went."""
        try:
            folders = [entry for entry in os.scandir(self._root)
                       if entry.name.isdigit() and entry.is_dir(follow_symlinks=False)]
        except OSError:
            return 0
        # The folders stay: removing an empty one could race a save's mkdir in another worker.
        return sum(self._sweep(Path(entry.path)) for entry in folders)

    def clear(self, account_id: int) -> None:
        shutil.rmtree(self._folder(account_id), ignore_errors=True)
