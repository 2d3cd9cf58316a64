"""The message bodies of the outbound queue: DIR/queue/<id>.eml.

A body is written once (temporary name, flush, rename, flush of the
directory; enqueue_batch does the flushes for all bodies queued at the same
moment) before its rows are committed, so an acknowledged message is always
on disk. A body that cannot be read is moved to DIR/queue/corrupt/
for the postmaster to look at; nothing is ever deleted silently.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

from nmail.durable import fsync_dir, write_file
from nmail.message_source import MessageSource
from nmail.queue import envelope_line
from nmail.queue.body_file import LARGE, QueuedBody, open_body

SUFFIX = ".eml"
CORRUPT_DIR = "corrupt"


class UnreadableBody(Exception):
    """A queued body is missing, unreadable or not the size recorded for it."""


def new_queue_id() -> str:
    """A unique, roughly time-ordered id: 12 hex digits of milliseconds + 10 random."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


def valid_queue_id(queue_id: str) -> bool:
    """True for ids this module makes (so an id never escapes the queue directory)."""
    return 8 <= len(queue_id) <= 40 and all(c in "0123456789abcdef" for c in queue_id)


class Spool:
    """Body files of the queue, one per message."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.corrupt_dir = directory / CORRUPT_DIR
        directory.mkdir(parents=True, exist_ok=True)
        self.corrupt_dir.mkdir(exist_ok=True)

    def path(self, queue_id: str) -> Path:
        return self.directory / f"{queue_id}{SUFFIX}"

    def write_unflushed(
        self, queue_id: str, content: MessageSource, envelope: bytes = b""
    ) -> Path:
        """Write envelope line + body under the temporary name, unflushed (see enqueue_batch)."""
        tmp = self.temporary_path(queue_id)
        write_file(tmp, (envelope, content), sync=False)
        return tmp

    def temporary_path(self, queue_id: str) -> Path:
        return self.directory / f".{queue_id}.tmp"

    def publish(self, queue_id: str) -> Path:
        """Give a flushed temporary file its final name (the directory still needs a flush)."""
        final = self.path(queue_id)
        os.replace(self.temporary_path(queue_id), final)
        return final

    def read(self, queue_id: str, expected_size: int | None = None) -> bytes:
        """The body; UnreadableBody when missing, unreadable or truncated."""
        try:
            data = self.path(queue_id).read_bytes()
        except OSError as exc:
            raise UnreadableBody(f"body file {self.path(queue_id).name}: {exc.strerror}") from None
        data = envelope_line.split(data)[1]
        if expected_size is not None and len(data) != expected_size:
            raise UnreadableBody(
                f"body file {self.path(queue_id).name} has {len(data)} bytes,"
                f" {expected_size} expected"
            )
        return data

    def read_for_sending(self, queue_id: str, expected_size: int) -> bytes | QueuedBody:
        """The body, or past body_file.LARGE a QueuedBody that sends it from its file
        in pieces; UnreadableBody as read()."""
        if expected_size <= LARGE:
            return self.read(queue_id, expected_size)
        try:
            return open_body(self.path(queue_id), expected_size)
        except OSError as exc:
            raise UnreadableBody(f"body file {self.path(queue_id).name}: {exc.strerror}") from None
        except ValueError as exc:
            raise UnreadableBody(str(exc)) from None

    def read_envelope(self, queue_id: str) -> tuple[bytes | None, int]:
        """(the envelope line or None, the message's size) of a stored body."""
        try:
            data = self.path(queue_id).read_bytes()
        except OSError as exc:
            raise UnreadableBody(f"body file {self.path(queue_id).name}: {exc.strerror}") from None
        line, body = envelope_line.split(data)
        return line, len(body)

    def remove(self, queue_id: str) -> None:
        with contextlib.suppress(OSError):
            self.path(queue_id).unlink(missing_ok=True)

    def move_aside(self, queue_id: str) -> Path | None:
        """Move the body (if any) to corrupt/; returns its new path."""
        source = self.path(queue_id)
        target = self.corrupt_dir / source.name
        try:
            os.replace(source, target)
        except FileNotFoundError:
            return None
        fsync_dir(self.corrupt_dir)
        return target

    def restore(self, queue_id: str) -> bool:
        """Move a body back from corrupt/ (the admin fixed it); False if not there."""
        source = self.corrupt_dir / f"{queue_id}{SUFFIX}"
        try:
            os.replace(source, self.path(queue_id))
        except FileNotFoundError:
            return False
        fsync_dir(self.directory)
        return True

    def corrupt_path(self, queue_id: str) -> Path:
        return self.corrupt_dir / f"{queue_id}{SUFFIX}"

    def stored_ids(self) -> list[str]:
        """Ids of the bodies in the queue directory (not the corrupt ones)."""
        return [
            p.name[: -len(SUFFIX)]
            for p in self.directory.iterdir()
            if p.name.endswith(SUFFIX) and p.is_file()
        ]

    def remove_stale_temporaries(self, older_than: float, now: float) -> list[str]:
        """Remove bodies written and never published (a crash before their rows and
        their 250: nothing was acknowledged) older than `older_than` seconds."""
        removed = []
        for path in self.directory.iterdir():
            if not (path.name.startswith(".") and path.name.endswith(".tmp")):
                continue
            try:
                if now - path.stat().st_mtime >= older_than:
                    path.unlink()
                    removed.append(path.name)
            except OSError:
                continue  # published or removed meanwhile
        return removed

    def age(self, queue_id: str, now: float) -> float:
        try:
            return now - self.path(queue_id).stat().st_mtime
        except OSError:
            return 0.0
