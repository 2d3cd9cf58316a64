"""Opening a message for the read screen in one trip to the thread pool.

Each hop between the event loop and the pool costs a little under load, and
the read screen needs four blocking steps (the folder is this user's, the
message's flags, its bytes, the parse); done together they are one hop and
the same ownership check as the platform's (the account's folder list).
The message is opened, not read: `read_page_file` reads only what the page
shows (web/page_files.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from nmail.mailstore.model import FolderInfo
from nmail.mime.file_parts import whole_file
from nmail.web import index_reads
from nmail.web.message_page import ReadPage
from nmail.web.page_files import read_page_file

MAX_UID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    folder: FolderInfo
    flags: frozenset[str]
    page: ReadPage


def open_message(backends: Any, account_id: int, folder_id: int, uid: int,
                 lang: str) -> OpenedMessage | None:
    """The folder, flags and read-screen data; None unless all of it is this account's."""
    if not 0 < uid <= MAX_UID:
        return None
    folder = next((f for f in backends.store.list_folders(account_id) if f.id == folder_id),
                  None)
    if folder is None:
        return None
    with backends.engine.connect() as conn:
        rows = index_reads.rows_by_uid(conn, folder.id, [uid])
    if not rows:
        return None
    opened = backends.store.open_message(account_id, folder.name, uid)
    if opened is None:
        return None
    with opened:
        page = read_page_file(whole_file(opened), lang)
    if not page.view.date:  # no Date: header, or one nobody can read: when it arrived
        page = replace(page, view=replace(page.view, date=rows[0].internal_date))
    return OpenedMessage(folder, rows[0].flags, page)
