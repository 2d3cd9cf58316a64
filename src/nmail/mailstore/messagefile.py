"""Single message files: writing to tmp/ durably, finding one whatever its flags.

A message is found by the name the index knows first (its file name and
the letters of its flags, keywords' letters through the folder's
`dovecot-keywords`), which is right unless another tool renamed the file or
a flag change's renames are still to come (flag_names.py). Only then is a
directory read entry by entry for the permanent name: on a folder of
100,000 messages that scan is one cur/ listing of 100,000 entries, which
used to happen on every read of a message carrying a keyword (its expected
name left the keyword letters out).
"""

from __future__ import annotations

import os
from pathlib import Path

from nmail.durable import write_file
from nmail.mailstore.keywords import KeywordLetters
from nmail.mailstore.names import disk_name, flags_to_letters, parse_flags
from nmail.message_source import MessageSource


def write_durably(
    path: str | Path, chunks: tuple[MessageSource, ...], mtime: int, *, sync: bool = True
) -> None:
    """Create `path` (must not exist) with `chunks` and mtime (Maildir readers and
    our dbsync take the arrival time from it); fsync unless `sync` is False."""
    write_file(path, chunks, mtime, sync=sync)


def expected_path(folder_dir: Path, filename: str, in_new: bool, flags_text: str,
                  keywords: KeywordLetters | None = None) -> Path:
    """Where the index says the file is (`keywords`: the folder's letters, if loaded)."""
    flags = parse_flags(flags_text)
    letters = flags_to_letters(flags)
    if len(letters) < len(flags) and not in_new:
        # Keywords: their letters come from the folder's dovecot-keywords.
        letters = (keywords or KeywordLetters.load(folder_dir)).letters_of(flags)
    sub = "new" if in_new else "cur"
    return folder_dir / sub / disk_name(filename, letters, in_new)


def locate(folder_dir: Path, filename: str, in_new: bool, flags_text: str,
           keywords: KeywordLetters | None = None) -> Path | None:
    """The message's file, even after another tool moved it to cur/ or changed its flags."""
    path = expected_path(folder_dir, filename, in_new, flags_text, keywords)
    if path.exists():
        return path
    if in_new:
        # The first reader of a new message (Dovecot, Courier, a mail client on the
        # Maildir) moves it to cur/ as `name:2,` plus the flags it has: one stat each,
        # where the scan below reads a listing of the whole folder (14 ms of CPU per
        # message at 100,000 in bench/webmail.py once Dovecot had opened the Maildir).
        for candidate in (expected_path(folder_dir, filename, False, flags_text, keywords),
                          folder_dir / "cur" / f"{filename}:2,"):
            if candidate.exists():
                return candidate
    for sub in ("cur", "new"):
        directory = folder_dir / sub
        plain = directory / filename
        if plain.exists():
            return plain
    return scan_for(folder_dir, filename)


def scan_for(folder_dir: Path, filename: str) -> Path | None:
    """The file whose permanent name is `filename`, by reading cur/ and new/ (O(n))."""
    for sub in ("cur", "new"):
        directory = folder_dir / sub
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(filename) and name[len(filename):len(filename) + 1] == ":":
                        return directory / name
        except FileNotFoundError:
            continue
    return None
