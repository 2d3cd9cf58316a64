"""How folders are shown: localized names of the special folders, nesting, order.

Special folders come first in a fixed order (받은편지함, 보낸편지함, 임시보관함,
스팸편지함, 휴지통 in Korean); the user's own folders follow, sorted, nested by
FOLDER_SEPARATOR.
"""

from __future__ import annotations

from dataclasses import dataclass

from nmail.web.i18n import N_
from nmail.web.i18n import gettext as _
from nmail.web.index_reads import FolderCounts

FOLDER_SEPARATOR = "/"
SPECIAL = {
    # name in the store -> (English shown name, icon id in icons.svg)
    "INBOX": (N_("Inbox"), "inbox"),
    "Sent": (N_("Sent"), "send"),
    "Drafts": (N_("Drafts"), "draft"),
    "Spam": (N_("Spam"), "spam"),
    "Trash": (N_("Trash"), "trash"),
}
ORDER = ("INBOX", "Sent", "Drafts", "Spam", "Trash")


@dataclass(frozen=True, slots=True)
class FolderView:
    id: int
    name: str  # as stored
    label: str  # shown (translated for special folders, last path part otherwise)
    icon: str
    depth: int
    unseen: int
    count: int
    size: int
    special: bool


def label_of(name: str) -> str:
    special = SPECIAL.get(name)
    if special is not None:
        return _(special[0])
    return name.rsplit(FOLDER_SEPARATOR, 1)[-1]


def folder_views(counts: list[FolderCounts]) -> list[FolderView]:
    def key(c: FolderCounts) -> tuple[int, str]:
        name = c.info.name
        return (ORDER.index(name), "") if name in ORDER else (len(ORDER), name.casefold())

    out = []
    for c in sorted(counts, key=key):
        name = c.info.name
        special = name in SPECIAL
        out.append(FolderView(
            id=c.info.id, name=name, label=label_of(name),
            icon=SPECIAL[name][1] if special else "folder",
            depth=0 if special else name.count(FOLDER_SEPARATOR),
            unseen=c.unseen, count=c.info.message_count, size=c.info.total_size,
            special=special,
        ))
    return out
