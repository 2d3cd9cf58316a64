"""Changes to selected messages: read/unread, flag, move, delete, spam, empty.

POST /mail/{folder}/actions  (form: action, uid*, target, toggle_flag, scope)
POST /mail/{folder}/empty    (Trash and Spam only)
A plain form post answers with a redirect back to the list (works without
JavaScript); a script asking for JSON gets {"changed": n}. UIDs come from
the form and only ever address the logged-in user's own folder, so someone
else's UID is simply absent. With `scope=thread` (the conversation list)
each UID stands for its conversation: the action applies to every message
of those conversations in this folder, including any that arrived since.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from nmail.mailstore.uidset import MAX_UID
from nmail.web.deps import CurrentUser, User, Web
from nmail.web.i18n import N_
from nmail.web.notices import notice_query
from nmail.web.routes.mailbox import notice_text, own_folder

router = APIRouter()
ACTIONS = ("read", "unread", "flag", "unflag", "move", "delete", "spam", "notspam")
MAX_SELECTED = 5000


def _answer(request: Request, web: Web, user: User, folder_id: int, done: str, changed: int,
            senders: Sequence[str] = ()) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"changed": changed, "notice": notice_text(done, changed)})
    query = notice_query(web.notice_key, user.session.id, done, changed, senders)
    return RedirectResponse(f"/mail/{folder_id}{query}", status_code=303)


@router.post("/mail/{folder_id}/actions")
async def act(
    request: Request, folder_id: int, user: CurrentUser, web: Web,
    action: Annotated[str, Form()] = "",
    uid: Annotated[list[int] | None, Form()] = None,
    target: Annotated[str, Form()] = "",
    toggle_flag: Annotated[int | None, Form()] = None,
    scope: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    folder = await own_folder(web, user, folder_id)
    whole = scope == "thread"
    if toggle_flag is not None:
        if not 0 < toggle_flag <= MAX_UID:
            raise HTTPException(404)
        toggled = await web.thread_uids(folder, [toggle_flag]) if whole else [toggle_flag]
        rows = await web.rows(folder, toggled)
        if not rows:
            raise HTTPException(404)
        # A conversation's star: on for all when none has it, else off for all.
        flagged = any("\\Flagged" in r.flags for r in rows)
        await web.set_flags(user.id, folder.name, [r.uid for r in rows],
                            remove=frozenset({"\\Flagged"}) if flagged else frozenset(),
                            add=frozenset() if flagged else frozenset({"\\Flagged"}))
        return _answer(request, web, user, folder.id, "flag" if not flagged else "unflag", 1)
    uids = sorted({u for u in uid or [] if 0 < u <= MAX_UID})  # no other UID can exist
    if action not in ACTIONS:
        raise HTTPException(400, N_("Choose what to do with the selected messages."))
    if not uids:
        raise HTTPException(400, N_("Select one or more messages first."))
    if whole:
        uids = await web.thread_uids(folder, uids[:MAX_SELECTED])
    if len(uids) > MAX_SELECTED:
        raise HTTPException(413)
    senders: list[str] = []
    if action in ("read", "unread", "flag", "unflag"):
        flag = "\\Seen" if action in ("read", "unread") else "\\Flagged"
        adding = action in ("read", "flag")
        await web.set_flags(user.id, folder.name, uids,
                            add=frozenset({flag}) if adding else frozenset(),
                            remove=frozenset() if adding else frozenset({flag}))
        changed = len(uids)
    elif action == "move":
        if not (target.isascii() and target.isdigit() and len(target) < 19):
            raise HTTPException(400, N_("Choose a folder to move to."))
        destination = await own_folder(web, user, int(target))
        if destination.id == folder.id:
            raise HTTPException(400, N_("The messages are in that folder already."))
        changed = await web.move(user.account, folder.name, uids, destination.name)
    elif action == "delete":
        changed = await web.delete(user.account, folder.name, uids)
    elif action == "spam":
        rows = await web.rows(folder, uids)
        senders = sorted({r.from_addr.lower() for r in rows if "@" in r.from_addr})[:10]
        changed = await web.move(user.account, folder.name, uids, "Spam")
    else:  # notspam
        changed = await web.move(user.account, folder.name, uids, "INBOX")
    return _answer(request, web, user, folder.id, action, changed, senders)


@router.post("/mail/{folder_id}/empty")
async def empty(request: Request, folder_id: int, user: CurrentUser, web: Web) -> Response:
    folder = await own_folder(web, user, folder_id)
    if folder.name not in ("Trash", "Spam"):
        raise HTTPException(400, N_("Only Trash and Spam can be emptied."))
    changed = await web.empty(user.id, folder.name)
    return _answer(request, web, user, folder.id, "empty", changed)
