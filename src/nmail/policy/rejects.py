"""A user's reject list: which envelope senders they refuse."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable


def sender_matches(sender: str, entries: Iterable[str]) -> bool:
    """Whether `sender` is on a reject list.

    Entries are full addresses (`spam@example.com`), whole domains
    (`example.com` or `@example.com`), or wildcards (`*@*.example.com`);
    comparison ignores case. The null sender never matches.
    """
    if not sender or "@" not in sender:
        return False
    address = sender.lower()
    domain = address.rpartition("@")[2]
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        if "*" in entry or "?" in entry:
            if fnmatch.fnmatchcase(address, entry):
                return True
        elif entry.startswith("@"):
            if domain == entry[1:]:
                return True
        elif "@" in entry:
            if address == entry:
                return True
        elif domain == entry:
            return True
    return False
