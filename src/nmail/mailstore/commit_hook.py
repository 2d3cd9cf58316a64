"""What the index writer reports after each commit, for the change feed.

The writer (a process in `nmail serve` with workers, a thread otherwise)
calls one CommitHook right after every COMMIT, before answering the callers,
with one FolderChange per folder the commit touched. The hook belongs to the
change feed; the mail store only promises to call it and to survive it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

ChangeKind = Literal[
    "deliver",  # new messages by the delivery path (deliveries and appends)
    "flags",
    "copy",  # messages copied in (reported on the target)
    "move",  # reported on both the source and the target
    "expunge",
    "folder-create",
    "folder-rename",  # one per renamed folder, under its new name
    "folder-delete",  # highest_modseq 0
    "subscribe",  # subscription on or off
]


@dataclass(frozen=True, slots=True)
class FolderChange:
    """One folder's change in one commit."""

    account_id: int
    folder_id: int
    folder: str  # API name ("INBOX", "거래처/2026"), the new one after a rename
    highest_modseq: int  # the folder's HIGHESTMODSEQ after the commit
    kind: ChangeKind


CommitHook = Callable[[Sequence[FolderChange]], None]


def report(hook: CommitHook | None, changes: Sequence[FolderChange]) -> None:
    """Call `hook` with `changes`; its failure is logged, the commit stands."""
    if hook is None or not changes:
        return
    try:
        hook(changes)
    except Exception:
        log.exception("the commit hook failed (%d changes not reported)", len(changes))
