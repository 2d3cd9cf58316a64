"""Whether every writer of the mail store stopped cleanly, so start-up repair may be skipped.

Start-up repair reads every `new/` and `cur/` directory and every row's name,
whatever happened before: measured on a shared 2-CPU VM (SQLite, 200
accounts, 1,206 folders), `prepare_data` took 1.7-3 s warm / 2.6 s with a
cold page cache for 200,000 messages and 7-8 s warm / 11.5 s cold for
1,000,000 (scandir and name parsing ~45%, loading every row's name ~20%:
O(messages), nothing per folder to drop), SMTP, POP3 and webmail down
meanwhile. After a clean stop of every writer it finds nothing. So each
writer of the mail store registers here for its life and the next start
skips the repair only when all of them stopped cleanly since the last full
repair (Postfix and Dovecot start at once too).

`<mail_dir>/.nmail-state/` (no domain starts with a dot) holds:
- `clean`: written only by the last writer to stop cleanly; removed, durably,
  by every writer before its first write.
- `writers/<token>`: one per live writer (a MailStore, serve's index writer
  process), flock'ed for the writer's life. The kernel drops a flock when its
  process dies, however it dies: a file whose flock can be taken is a writer
  that died without stopping cleanly (kill -9, power loss, an error). Such
  files stay until a full repair without errors has run after them, and
  while one stays no stop writes `clean`.
- `lock`: flock'ed around registering (file made and locked, `clean`
  removed) and around a clean stop (own file removed, `clean` written only if
  no other writer file is left, live or dead), so a writer that starts while
  another stops never has the marker written back behind it.

A writer whose write failed unexpectedly (not a refusal) is `taint`ed and
does not write `clean` either: such a failure may leave what repair fixes
(a rename whose undo failed).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nmail.durable import fsync_dir

log = logging.getLogger(__name__)

STATE_DIR = ".nmail-state"
MARKER = "clean"


@dataclass(frozen=True, slots=True)
class StartState:
    """What a writer found when it registered."""

    clean: bool  # every earlier writer stopped cleanly: repair may be skipped
    dead: tuple[str, ...]  # writer files of writers that died (a full repair forgets them)


def state_dir(mail_dir: Path) -> Path:
    return Path(mail_dir) / STATE_DIR


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _is_dead(path: Path) -> bool:
    """A writer file nobody holds (its process died); False if it is gone or held."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _writer_files(writers: Path) -> list[Path]:
    return sorted(p for p in writers.iterdir() if p.is_file() and not p.is_symlink())


class WriterMark:
    """This writer's registration: made at construction, ended by `stop`."""

    def __init__(self, mail_dir: Path) -> None:
        self._root = state_dir(mail_dir)
        self._writers = self._root / "writers"
        self._writers.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tainted = False
        with _locked(self._root):
            marker = self._root / MARKER
            # Before the writer file exists, so that it is not taken for a dead one.
            dead = tuple(p.name for p in _writer_files(self._writers) if _is_dead(p))
            clean = marker.is_file() and not dead
            self._path = self._writers / secrets.token_hex(8)
            self._fd: int | None = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL
                                           | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            os.write(self._fd, f"{os.getpid()}\n".encode())
            fsync_dir(self._writers)
            if marker.is_dir() and not marker.is_symlink():
                shutil.rmtree(marker)  # not ours: out of the way of the next stop's
            elif marker.exists() or marker.is_symlink():
                os.unlink(marker)
            fsync_dir(self._root)
        self.start = StartState(clean, dead)

    def taint(self) -> None:
        """A write failed in a way repair may have to mend: no `clean` at stop."""
        if not self._tainted:
            log.warning("the next start will repair the index (a write failed here)")
        self._tainted = True

    def forget_dead(self, names: Sequence[str]) -> None:
        """After a full repair without errors: the dead writers it covered are forgotten."""
        with _locked(self._root):
            for name in names:
                path = self._writers / name
                if _is_dead(path):
                    path.unlink(missing_ok=True)
            fsync_dir(self._writers)

    def stop(self, *, clean: bool = True) -> bool:
        """End the registration; `clean`: this writer finished every write it began.
        Returns whether the marker was written (no other writer left). Idempotent."""
        if self._fd is None:
            return False
        written = False
        try:
            if not clean or self._tainted:
                return False  # the file stays, unlocked: a dead writer
            with _locked(self._root):
                self._path.unlink(missing_ok=True)
                fsync_dir(self._writers)
                if not _writer_files(self._writers):
                    _write_marker(self._root)
                    written = True
        except OSError as exc:
            log.warning("could not record a clean stop (%s): the next start repairs", exc)
        finally:
            os.close(self._fd)
            self._fd = None
        return written


def _write_marker(root: Path) -> None:
    tmp = root / f"{MARKER}.tmp"
    with open(tmp, "wb") as f:
        f.write(b"every writer of the mail store stopped cleanly\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / MARKER)
    fsync_dir(root)
