"""How folders are shown: localized names of the special folders, nesting, order.

Special folders come first in a fixed order (받은편지함, 임시보관함, 보낸편지함,
보관함, 스팸편지함, 휴지통 in Korean); the user's own folders follow, sorted by
path so each parent comes before its children, indented by depth.
"""

from __future__ import annotations

from dataclasses import dataclass

from nmail.mailstore.model import FolderInfo
from nmail.web.i18n import N_
from nmail.web.i18n import gettext as _

FOLDER_SEPARATOR = "/"
SPECIAL = {
    # name in the store -> (English shown name, icon id in icons.svg)
    "INBOX": (N_("Inbox"), "inbox"),
    "Sent": (N_("Sent"), "send"),
    "Drafts": (N_("Drafts"), "draft"),
    "Spam": (N_("Spam"), "spam"),
    "Trash": (N_("Trash"), "trash"),
    "Archive": (N_("Archive"), "archive"),
}
ORDER = ("INBOX", "Drafts", "Sent", "Archive", "Spam", "Trash")


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
    subscribed: bool = True  # shown in the folder tree (the rest fold under "All folders")


def label_of(name: str) -> str:
    special = SPECIAL.get(name)
    if special is not None:
        return _(special[0])
    return name.rsplit(FOLDER_SEPARATOR, 1)[-1]


def folder_views(folders: list[FolderInfo]) -> list[FolderView]:
    """Special folders first in ORDER, then the user's own, each parent before its children."""
    def key(f: FolderInfo) -> tuple[int, tuple[str, ...]]:
        if f.name in ORDER:
            return ORDER.index(f.name), ()
        return len(ORDER), tuple(part.casefold() for part in f.name.split(FOLDER_SEPARATOR))

    out = []
    for f in sorted(folders, key=key):
        special = f.name in SPECIAL
        out.append(FolderView(
            id=f.id, name=f.name, label=label_of(f.name),
            icon=SPECIAL[f.name][1] if special else "folder",
            depth=0 if special else f.name.count(FOLDER_SEPARATOR),
            unseen=f.unseen_count, count=f.message_count, size=f.total_size,
            special=special, subscribed=f.subscribed,
        ))
    return out
