"""Keywords in Maildir file names: Dovecot's `dovecot-keywords` letters.

System flags are the capital letters of the `:2,` info (names.FLAG_LETTERS).
Keywords (`$Forwarded`, `$Junk`, user labels) get the lower-case letters a-z
through a per-folder file `dovecot-keywords` of lines `<n> <keyword>` (letter
a is 0), the format Dovecot reads and writes, so its tools and ours agree
and `nmail dbsync` rebuilds keywords from the files. A folder's first 26
keywords get letters; further ones live in the index only (as in Dovecot).
"""

from __future__ import annotations

import os
from pathlib import Path

from nmail.durable import fsync_dir
from nmail.mailstore.names import FLAG_LETTERS, LETTER_FLAGS

KEYWORDS_FILE = "dovecot-keywords"
MAX_LETTERS = 26


class KeywordLetters:
    """One folder's keyword <-> letter map, as read from (and saved to) its file."""

    def __init__(self, directory: Path, names: list[str]) -> None:
        self._directory = directory
        self._names = names  # index = letter - 'a'
        self._index = {name: i for i, name in enumerate(names)}
        self._dirty = False

    @classmethod
    def load(cls, directory: Path) -> KeywordLetters:
        names: list[str] = []
        try:
            text = (directory / KEYWORDS_FILE).read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return cls(directory, names)
        found: dict[int, str] = {}
        for line in text.splitlines():
            number, _, name = line.partition(" ")
            if number.isdigit() and int(number) < MAX_LETTERS and name and " " not in name:
                found[int(number)] = name
        for i in range(MAX_LETTERS):
            if i not in found:
                break
            names.append(found[i])
        return cls(directory, names)

    def letters_of(self, flags: frozenset[str], *, add: bool = False) -> str:
        """The info letters of `flags`, in ASCII order; `add` gives new keywords letters."""
        out = [FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS]
        for flag in sorted(flags):  # new keywords get letters in a stable order
            if flag in FLAG_LETTERS:
                continue
            index = self._index.get(flag)
            if index is None and add and len(self._names) < MAX_LETTERS:
                index = self._index[flag] = len(self._names)
                self._names.append(flag)
                self._dirty = True
            if index is not None:
                out.append(chr(ord("a") + index))
        return "".join(sorted(out))

    def flags_of(self, letters: str) -> frozenset[str]:
        """The flags the letters stand for (unknown letters are ignored)."""
        out = {LETTER_FLAGS[ch] for ch in letters if ch in LETTER_FLAGS}
        for ch in letters:
            index = ord(ch) - ord("a")
            if 0 <= index < len(self._names):
                out.add(self._names[index])
        return frozenset(out)

    def save(self) -> None:
        """Write the file (atomically, durably) if a keyword got a letter."""
        if not self._dirty:
            return
        text = "".join(f"{i} {name}\n" for i, name in enumerate(self._names))
        tmp = self._directory / f"{KEYWORDS_FILE}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._directory / KEYWORDS_FILE)
        fsync_dir(self._directory)
        self._dirty = False
