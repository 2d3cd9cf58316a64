"""What of a data directory must be private, and making it so.

`index.sqlite3` holds password hashes and the DKIM private keys,
`nmail.toml` may hold database and smarthost passwords, `tls/` the TLS key,
`logs/` and `queue/` and `mail/` everyone's mail and addresses. They were
created 0644 in 0755 directories: readable by every local user. Now:

- `nmail init` and `nmail serve` run with umask 077, so everything they
  create (files 0600, directories 0700) is the owner's alone;
- at every start `nmail serve` tightens an existing install (`tighten`),
  logging each change, so an upgrade fixes what an older version made;
- `nmail doctor` reports what is still open (`find_open`).

Only the group and other bits are taken away; nothing is ever widened.
What is checked: the data directory, everything directly in it, everything
under `logs/` and `tls/` (small), and the SQLite database and TLS files
where the configuration puts them elsewhere. Mail and queue files need no
walk: once `mail/` and `queue/` are 0700 nobody else can reach them.
Symbolic links are not followed or changed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from nmail.config import Config

PRIVATE_UMASK = 0o077
_WALKED = ("logs", "tls")
_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal", ".writer-lock")


@dataclass(frozen=True, slots=True)
class OpenPath:
    """A path others can read or enter: its mode and what it should be."""

    path: Path
    mode: int  # permission bits now
    owner_uid: int

    @property
    def wanted(self) -> int:
        return self.mode & 0o700

    @property
    def ours(self) -> bool:
        return self.owner_uid == os.geteuid()

    def tightened(self) -> str:
        """What tighten() did to it, for the log."""
        return f"{self.path} was {self.mode & 0o777:04o}, now {self.wanted & 0o777:04o}"

    def describe(self) -> str:
        kind = "directory" if stat.S_ISDIR(self.mode) else "file"
        text = f"{self.path} ({kind}) is {self.mode & 0o777:04o}"
        text += f", should be {self.wanted & 0o777:04o}"
        if not self.ours:
            text += f" (owned by uid {self.owner_uid}, not by this user)"
        return text


def private_paths(data_dir: Path, config: Config | None = None) -> Iterator[Path]:
    """Every path that must be private (existing ones only)."""
    yield data_dir
    seen = {data_dir}
    try:
        children = sorted(data_dir.iterdir())
    except OSError:
        children = []
    for child in children:
        yield child
        seen.add(child)
        if child.name in _WALKED and child.is_dir() and not child.is_symlink():
            for root, dirs, files in os.walk(child):
                for name in sorted(dirs + files):
                    path = Path(root) / name
                    seen.add(path)
                    yield path
    for extra in _configured_elsewhere(config):
        if extra not in seen and (extra.exists() or extra.is_symlink()):
            seen.add(extra)
            yield extra


def _configured_elsewhere(config: Config | None) -> Iterable[Path]:
    if config is None:
        return []
    found: list[Path] = []
    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database)
        found += [database.with_name(database.name + side) for side in _SQLITE_SIDE_FILES]
    found += [p for p in (config.tls.cert, config.tls.key) if p is not None]
    return found


def find_open(data_dir: Path, config: Config | None = None) -> list[OpenPath]:
    """The private paths that group or others can read, write or enter."""
    found = []
    for path in private_paths(data_dir, config):
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        if info.st_mode & 0o077:
            found.append(OpenPath(path, stat.S_IMODE(info.st_mode) | stat.S_IFMT(info.st_mode),
                                  info.st_uid))
    return found


def tighten(data_dir: Path, config: Config | None = None) -> tuple[list[OpenPath], list[str]]:
    """Take group and other bits off every open private path.

    Returns what was changed and the paths that could not be (with why).
    """
    changed: list[OpenPath] = []
    failed: list[str] = []
    for item in find_open(data_dir, config):
        try:
            os.chmod(item.path, item.wanted & 0o7777, follow_symlinks=False)
        except OSError as exc:
            failed.append(f"{item.describe()}: {exc.strerror or exc}")
        else:
            changed.append(item)
    return changed, failed
