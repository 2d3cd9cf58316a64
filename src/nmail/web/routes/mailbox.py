"""The mailbox screen: folder tree, one page of a folder's list, the reading pane.

GET /               -> the user's INBOX
GET /mail/{folder}  -> list (?page=N&sort=date|from|subject|size&order=asc|desc), of
                       messages or, if the user chose so, of conversations; without an
                       order a key sorts its natural way (NATURAL_ORDER): date and size
                       newest/largest first, From and Subject A→Z (ㄱ→ㅎ)
GET /mail/{folder}/thread/{id} -> one conversation (?pane=1: for the list's pane); the id
                       of a conversation since merged into another redirects to that one
POST /mail/{folder}/view       -> view=messages|conversations (remembered per user)
Folder ids in URLs are checked against the logged-in account: another
user's id is 404, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, cast
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request
from starlette.responses import RedirectResponse, Response

from nmail.mailstore.model import FolderInfo, MessageRow, SortKey
from nmail.mailstore.thread_reads import Conversation
from nmail.web.deps import CurrentUser, Pages, User, Web
from nmail.web.folder_views import FolderView, folder_views, label_of
from nmail.web.i18n import N_, N_plural, gettext, ngettext
from nmail.web.notices import genuine
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


# A new sort key starts the way a reader expects it; choosing it again reverses it. Before,
# every key started descending, so From and Subject listed Z→A first. Text keys are
# ascending in the index's own order (messages.from_sort/subject_sort, case-folded, walked
# on their index): code point order on SQLite and PostgreSQL's C collation, and also under
# a ko_KR/en_US collation and MariaDB's utf8mb4_general_ci, Hangul syllables come in
# dictionary order (ㄱ→ㅎ: Unicode lays them out by initial, vowel, final), after Latin.
NATURAL_ORDER: dict[str, str] = {"date": "desc", "from": "asc", "subject": "asc", "size": "desc"}
_SORT_LABELS = {
    ("date", "desc"): N_("Newest first"), ("date", "asc"): N_("Oldest first"),
    ("from", "asc"): N_("From A→Z"), ("from", "desc"): N_("From Z→A"),
    ("subject", "asc"): N_("Subject A→Z"), ("subject", "desc"): N_("Subject Z→A"),
    ("size", "desc"): N_("Largest first"), ("size", "asc"): N_("Smallest first"),
}


def sort_menu(sort: str, order: str) -> tuple[str, list[tuple[str, str, str]]]:
    """(the current order's label, the menu's links as (key, order, label)): each key
    in its natural order, the current key reversed (the toggle), each link named by
    what it shows."""
    links = []
    for key, natural in NATURAL_ORDER.items():
        to = ("asc" if order == "desc" else "desc") if key == sort else natural
        links.append((key, to, gettext(_SORT_LABELS[key, to])))
    return gettext(_SORT_LABELS[sort, order]), links


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


def conversation_view(folder_id: int, c: Conversation, now: float,
                      zone: ZoneInfo = SEOUL) -> dict[str, object]:
    """A conversation's row: its newest message, its senders, its counts.

    A conversation of one message opens as that message; a longer one opens
    the conversation (GET /mail/{folder}/thread/{id}).
    """
    view = row_view(c.latest, now, zone)
    view.update(
        unseen=c.unseen > 0, flagged=c.flagged, attachments=c.has_attachments,
        from_name=", ".join(c.participants) or view["from_name"], thread_count=c.count,
    )
    if c.count > 1:
        view["href"] = f"/mail/{folder_id}/thread/{c.thread_id}"
    return view


@router.get("/mail/{folder_id}/thread/{thread_id}")
async def conversation_page(request: Request, folder_id: int, thread_id: str,
                            user: CurrentUser, web: Web, pages: Pages,
                            pane: int = 0) -> Response:
    """Every message of one conversation, oldest first: this folder's, and the
    account's others but Trash/Spam/Drafts (your replies in Sent) marked with
    their folder; each a <details> (open: the unread ones and the last) holding
    the message's pane. Its actions apply to this folder's messages."""
    tree = await web.folder_tree(user.id)
    folder = next((f for f in tree if f.id == folder_id), None)
    # Not printable (a NUL): no thread is named so, and PostgreSQL would refuse the query.
    if folder is None or not thread_id or len(thread_id) > 64 or not thread_id.isprintable():
        raise HTTPException(404)
    current, found = await web.thread(user.id, folder, thread_id)
    if not found:
        raise HTTPException(404)
    if current != thread_id:  # merged since the link was made: its conversation's URL
        return RedirectResponse(f"/mail/{folder.id}/thread/{current}"
                                f"{'?pane=1' if pane else ''}", status_code=307)
    now = web.backends.clock()
    labels = {f.id: label_of(f.name) for f in tree}
    items = [{**row_view(r, now, pages.zone), "folder_id": fid,
              "elsewhere": labels.get(fid, "") if fid != folder.id else "",
              "open": "\\Seen" not in r.flags or i == len(found) - 1}
             for i, (fid, r) in enumerate(found)]
    own = [r for fid, r in found if fid == folder.id]
    context: dict[str, Any] = {
        "folder": folder, "folder_label": label_of(folder.name), "thread_id": thread_id,
        "subject": found[0][1].subject, "items": items, "pane": bool(pane),
        "anchor": own[-1].uid, "own_count": len(own),
        "unseen": sum(1 for r in own if "\\Seen" not in r.flags),
    }
    context.update(await mailbox_context(user, web, folder.id, tree))
    return pages.render(request, "thread_pane.html" if pane else "thread.html", **context)


@router.post("/mail/{folder_id}/view")
async def choose_view(folder_id: int, user: CurrentUser, web: Web,
                      view: Annotated[str, Form(max_length=16)] = "") -> Response:
    """Messages or conversations: remembered for the user (web_prefs.threads)."""
    folder = await own_folder(web, user, folder_id)
    if view not in ("messages", "conversations"):
        raise HTTPException(400, N_("Choose messages or conversations."))
    await web.update_prefs(user.id, threads=view == "conversations")
    return RedirectResponse(f"/mail/{folder.id}", status_code=303)


@router.get("/mail/{folder_id}")
async def folder_page(
    request: Request, folder_id: int, user: CurrentUser, web: Web, pages: Pages,
    page: int = 1, sort: str = "date",
    order: str = "", done: str = "", n: int = 0,
    offer_reject: Annotated[list[str] | None, Query(max_length=320)] = None,
    ok: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    if sort not in NATURAL_ORDER or order not in ("", "asc", "desc"):
        raise HTTPException(400, N_("There is no such order for the list."))
    order = order or NATURAL_ORDER[sort]
    senders = (offer_reject or [])[:10]
    if not genuine(web.notice_key, user.session.id, done, n, senders, ok):
        done, senders = "", []  # a link made elsewhere: no notice, no offer
    size = user.session.page_size
    page = min(max(page, 1), MAX_PAGE)
    threads = user.session.threads
    now = web.backends.clock()
    # One trip to the pool: the tree, the folder (if it is ours) and the page.
    if threads:  # newest activity first, whatever the sort asked
        tree, folder, found, total = await web.folder_conversations(
            user.id, folder_id, size, (page - 1) * size)
        views = [conversation_view(folder_id, c, now, pages.zone) for c in found]
        sort, order = "date", "desc"
    else:
        tree, folder, rows = await web.folder_page(user.id, folder_id, cast(SortKey, sort),
                                                   order == "desc",
                                                   size, (page - 1) * size)
        views = [row_view(r, now, pages.zone) for r in rows]
        total = folder.message_count if folder is not None else 0
    if folder is None:
        raise HTTPException(404)
    total_pages = max(1, -(-total // size))
    context = await mailbox_context(user, web, folder.id, tree)
    return pages.render(
        request, "mailbox.html", folder=folder, folder_label=label_of(folder.name),
        rows=views, page=page, total_pages=total_pages,
        sort=sort, order=order, sort_menu=sort_menu(sort, order), page_size=size,
        threads=threads, total=total,
        notice=notice_text(done, n),
        offer_reject=[a for a in senders if "@" in a],
        **context,
    )
