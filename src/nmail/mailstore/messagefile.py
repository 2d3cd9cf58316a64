"""Single message files: writing to tmp/ durably, finding one whatever its flags."""

from __future__ import annotations

import os
from pathlib import Path

from nmail.durable import write_file
from nmail.mailstore.names import disk_name, flags_to_letters, parse_flags


def write_durably(
    path: str | Path, chunks: tuple[bytes, ...], mtime: int, *, sync: bool = True
) -> None:
    """Create `path` (must not exist) with `chunks` and mtime (Maildir readers and
    our dbsync take the arrival time from it); fsync unless `sync` is False."""
    write_file(path, chunks, mtime, sync=sync)


def expected_path(folder_dir: Path, filename: str, in_new: bool, flags_text: str) -> Path:
    """Where the index says the file is."""
    letters = flags_to_letters(parse_flags(flags_text))
    sub = "new" if in_new else "cur"
    return folder_dir / sub / disk_name(filename, letters, in_new)


def locate(folder_dir: Path, filename: str, in_new: bool, flags_text: str) -> Path | None:
    """The message's file, even after another tool moved it to cur/ or changed its flags."""
    path = expected_path(folder_dir, filename, in_new, flags_text)
    if path.exists():
        return path
    for sub in ("cur", "new"):
        directory = folder_dir / sub
        plain = directory / filename
        if plain.exists():
            return plain
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(filename) and name[len(filename):len(filename) + 1] == ":":
                        return directory / name
        except FileNotFoundError:
            continue
    return None
