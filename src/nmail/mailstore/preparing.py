"""Writing a delivery's message files into tmp/ before the index writer takes them.

The files are written, not flushed: the index writer flushes a whole batch
at once (group commit). Until the batch commits, a file exists only in
tmp/; a delivery that does not happen removes its files again.

A large message (a SpooledMessage, nmail/message_source.py) is copied from
its spool file by the kernel and summarized from its outline (mime/outline.py:
the first 256 KiB, then only MIME delimiter lines and part headers), so a
delivery holds about a megabyte of it whatever its size. Its file in tmp/
is flushed by the batch like any other: the order of a delivery is unchanged.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path

from nmail.mailstore.delivery_batch import FolderGone, PreparedMessage
from nmail.mailstore.indexrow import has_dot_line, index_values
from nmail.mailstore.messagefile import write_durably
from nmail.mailstore.model import NewMessage, StoredMessage, StoreError
from nmail.mailstore.names import flags_to_letters, format_flags, new_base
from nmail.mailstore.names import normalize_flags as _normalize_flags
from nmail.mime.outline import outline

_MAX_TIME = 2**62
_NO_FLAGS: frozenset[str] = frozenset()

# An item with its folder (id, directory), its flags and their index text.
Checked = tuple[NewMessage, tuple[int, Path], frozenset[str], str]


def check_flags(item: NewMessage) -> tuple[frozenset[str], str]:
    """The item's normalized flags and their index text; StoreError when bad."""
    date = item.internal_date
    if date is not None and not 0 <= date < _MAX_TIME:
        raise StoreError(f"bad internal date {date}")
    if not item.flags:
        return _NO_FLAGS, ""  # every delivery from outside
    flags = normalized_flags(item.flags)
    try:
        return flags, format_flags(flags)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def normalized_flags(flags: Iterable[str]) -> frozenset[str]:
    try:
        return _normalize_flags(frozenset(flags))
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def prepare_all(
    checked: list[Checked], host: str, clock: Callable[[], float]
) -> list[PreparedMessage]:
    """Write every item's file; all or none (FolderGone if a Maildir vanished)."""
    prepared: list[PreparedMessage] = []
    try:
        for item, (folder_id, path), flags, flags_text in checked:
            prepared.append(_prepare(item, folder_id, path, flags, flags_text, host, clock()))
    except BaseException:
        discard(prepared)
        raise
    return prepared


def _prepare(item: NewMessage, folder_id: int, path: Path, flags: frozenset[str],
             flags_text: str, host: str, now: float) -> PreparedMessage:
    internal = int(item.internal_date) if item.internal_date is not None else int(now)
    content = item.content
    # Whether a line of the file starts with "." (messages.dot_lines, for POP3).
    # The trace headers are nmail's own lines, yet a few hundred bytes are cheap
    # to look at (inline: a call costs more than the find); the content only
    # when the caller did not say (SMTP does).
    prefix = item.prefix
    dots = item.dot_lines
    if dots is None:
        # A large message stays in its spool, not read for this: POP3 stuffs it.
        dots = has_dot_line(content) if isinstance(content, bytes) else True
    if not dots and prefix:
        dots = prefix[:1] == b"." or prefix.find(b"\n.") >= 0
    if isinstance(content, bytes):
        columns = index_values(content, internal, dots)
    else:
        columns = index_values(outline(content.chunks()), internal, dots)
    base = new_base(host, now)
    folder = str(path)
    tmp = folder + "/tmp/" + base  # noqa: S108 (the Maildir's tmp/)
    try:
        # Flushed with the rest of its batch by the writer (group commit).
        write_durably(tmp, (item.prefix, item.content), internal, sync=False)
    except FileNotFoundError:
        # Someone removed the Maildir under us: store() looks the folder up again.
        raise FolderGone(f"the directory of folder {item.folder} is missing") from None
    return PreparedMessage(
        account_id=item.account.id, folder_id=folder_id, folder_dir=folder, tmp_path=tmp,
        base=base, size=len(item.prefix) + len(item.content), flags_text=flags_text,
        letters=flags_to_letters(flags), in_new=not flags, internal_date=internal,
        columns=columns,
    )


def discard(prepared: Sequence[PreparedMessage]) -> None:
    """Remove the tmp/ files of a delivery that did not happen."""
    for p in prepared:
        with contextlib.suppress(OSError):
            os.unlink(p.tmp_path)


def discard_on_failure(future: Future[list[StoredMessage]],
                       prepared: list[PreparedMessage]) -> None:
    """A Future callback: discard() unless the delivery committed."""
    if future.cancelled() or future.exception() is not None:
        discard(prepared)
