"""The mailbox screen: folder tree, one page of a folder's list, the reading pane.

GET /               -> the user's INBOX
GET /mail/{folder}  -> list (?page=N&sort=date|from|subject|size&order=asc|desc)
Folder ids in URLs are checked against the logged-in account: another
user's id is 404, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import RedirectResponse, Response

from nmail.mailstore.model import FolderInfo, MessageRow
from nmail.web.deps import CurrentUser, Pages, User, Web
from nmail.web.folder_views import FolderView, folder_views, label_of
from nmail.web.i18n import N_plural, ngettext
from nmail.web.templating import SEOUL, full_date, human_size, short_date

router = APIRouter()
MAX_PAGE = 100_000
_NOTICES = {
    "read": N_plural("%(num)d message marked as read.", "%(num)d messages marked as read."),
    "unread": N_plural("%(num)d message marked as unread.",
                       "%(num)d messages marked as unread."),
    "flag": N_plural("%(num)d message flagged.", "%(num)d messages flagged."),
    "unflag": N_plural("%(num)d message unflagged.", "%(num)d messages unflagged."),
    "move": N_plural("%(num)d message moved.", "%(num)d messages moved."),
    "delete": N_plural("%(num)d message deleted.", "%(num)d messages deleted."),
    "spam": N_plural("%(num)d message moved to Spam.", "%(num)d messages moved to Spam."),
    "notspam": N_plural("%(num)d message moved to the Inbox.",
                        "%(num)d messages moved to the Inbox."),
    "empty": N_plural("%(num)d message deleted for good.", "%(num)d messages deleted for good."),
}


def notice_text(done: str, count: int) -> str:
    """The line shown after a change to selected messages ("" for an unknown kind)."""
    forms = _NOTICES.get(done)
    if forms is None:
        return ""
    if done in ("flag", "unflag") and count == 1:
        return ""  # a star toggled in place needs no sentence
    return ngettext(forms[0], forms[1], count) % {"num": count}


async def own_folder(web: Web, user: User, folder_id: int) -> FolderInfo:
    folder = await web.folder(user.id, folder_id)
    if folder is None:
        raise HTTPException(404)
    return folder


@router.get("/")
async def home(user: CurrentUser, web: Web) -> Response:
    inbox = await web.folder_named(user.id, "INBOX")
    return RedirectResponse(f"/mail/{inbox.id}", status_code=303)


def row_view(row: MessageRow, now: float, zone: ZoneInfo = SEOUL) -> dict[str, object]:
    return {
        "uid": row.uid,
        "unseen": "\\Seen" not in row.flags,
        "flagged": "\\Flagged" in row.flags,
        "answered": "\\Answered" in row.flags,
        "from_name": row.from_name or row.from_addr,
        "from_addr": row.from_addr,
        "to": row.to_addrs,
        "subject": row.subject,
        "preview": row.preview,
        "date": short_date(row.date or row.internal_date, now, zone),
        "full_date": full_date(row.date or row.internal_date, zone),
        "size_text": human_size(row.size),
        "thread_count": 1,
        "stamp": row.date or row.internal_date,
        "size": row.size,
        "attachments": row.has_attachments,
        "thread": row.thread_id,
    }


async def mailbox_context(user: User, web: Web, current: int,
                          tree: list[FolderInfo] | None = None) -> dict[str, Any]:
    """What every mailbox-shaped screen needs: the folder tree and the unread total."""
    views: list[FolderView] = folder_views(tree if tree is not None
                                           else await web.folder_tree(user.id))
    inbox_unseen = next((v.unseen for v in views if v.name == "INBOX"), 0)
    return {"folders": views, "current_folder": current, "inbox_unseen": inbox_unseen,
            "move_targets": [v for v in views if v.id != current]}


async def conversations(web: Web, folder: FolderInfo,
                        views: list[dict[str, object]]) -> list[dict[str, object]]:
    """Conversation view: one row per thread on the page (its newest), with the count.

    Only the messages of this page are folded, so a page may show fewer rows;
    a thread's row opens the whole conversation (GET /mail/{folder}/thread/{id}).
    """
    counts = await web.thread_counts(folder, [str(v["thread"]) for v in views])
    seen: set[str] = set()
    out = []
    for view in views:
        thread = str(view["thread"])
        if thread and thread in seen:
            continue
        seen.add(thread)
        count = counts.get(thread, 1) if thread else 1
        if count > 1:
            view = {**view, "thread_count": count,
                    "href": f"/mail/{folder.id}/thread/{thread}"}
        out.append(view)
    return out


@router.get("/mail/{folder_id}/thread/{thread_id}")
async def conversation_page(request: Request, folder_id: int, thread_id: str,
                            user: CurrentUser, web: Web, pages: Pages) -> Response:
    """Every message of one conversation in this folder, oldest first."""
    tree = await web.folder_tree(user.id)
    folder = next((f for f in tree if f.id == folder_id), None)
    if folder is None or not thread_id or len(thread_id) > 64:
        raise HTTPException(404)
    rows = await web.thread(folder, thread_id)
    if not rows:
        raise HTTPException(404)
    now = web.backends.clock()
    context = await mailbox_context(user, web, folder.id, tree)
    return pages.render(
        request, "mailbox.html", folder=folder, folder_label=rows[0].subject or label_of(
            folder.name), rows=[row_view(r, now, pages.zone) for r in rows], page=1,
        total_pages=1, sort="date", order="asc", page_size=len(rows), threads=True,
        notice="", offer_reject=[], conversation=True, **context,
    )


@router.get("/mail/{folder_id}")
async def folder_page(
    request: Request, folder_id: int, user: CurrentUser, web: Web, pages: Pages,
    page: int = 1, sort: Literal["date", "from", "subject", "size"] = "date",
    order: Literal["asc", "desc"] = "desc", done: str = "", n: int = 0,
    offer_reject: Annotated[list[str] | None, Query(max_length=320)] = None,
) -> Response:
    size = user.session.page_size
    page = min(max(page, 1), MAX_PAGE)
    # One trip to the pool: the tree, the folder (if it is ours) and the page.
    tree, folder, rows = await web.folder_page(user.id, folder_id, sort, order == "desc",
                                               size, (page - 1) * size)
    if folder is None:
        raise HTTPException(404)
    now = web.backends.clock()
    views = [row_view(r, now, pages.zone) for r in rows]
    if user.session.threads:
        views = await conversations(web, folder, views)
    total_pages = max(1, -(-folder.message_count // size))
    context = await mailbox_context(user, web, folder.id, tree)
    return pages.render(
        request, "mailbox.html", folder=folder, folder_label=label_of(folder.name),
        rows=views, page=page, total_pages=total_pages,
        sort=sort, order=order, page_size=size, threads=user.session.threads,
        notice=notice_text(done, n),
        offer_reject=[a for a in (offer_reject or [])[:10] if "@" in a],
        **context,
    )
