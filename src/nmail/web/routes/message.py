"""Reading one message: the read screen, its sandboxed body frame, "show images".

GET  /mail/{folder_id}/{uid}              the read screen (?pane=1: for the list's pane);
                                          marks it read when opened from our own pages
                                          (OwnPage): another site's link opens it unread;
                                          ?images=1 likewise counts only from our pages
GET  /mail/{folder_id}/{uid}/body         the HTML body's document (?show=<token>: remote
                                          too, web/image_grant.py)
POST /mail/{folder_id}/{uid}/trust-sender always show this sender's images
Another user's folder or message is 404, like one that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
from typing import IO, Any

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from nmail.mailstore.model import FolderInfo
from nmail.mime.file_parts import whole_file
from nmail.web.deps import CurrentUser, OwnPage, Pages, User, Web
from nmail.web.folder_views import label_of
from nmail.web.i18n import current_language
from nmail.web.image_grant import images_query, remote_asked
from nmail.web.mail_services import Mail
from nmail.web.message_html import frame_csp
from nmail.web.message_open import MAX_UID, open_message
from nmail.web.message_page import ReadPage
from nmail.web.page_files import frame_content_file, sender_address_file
from nmail.web.routes.mailbox import mailbox_context, own_folder

router = APIRouter()
log = logging.getLogger(__name__)


async def own_file(web: Web, user: User, folder_id: int, uid: int
                   ) -> tuple[FolderInfo, IO[bytes]]:
    """The folder and the message's file opened (the caller closes it), 404 unless both
    are this user's."""
    if not 0 < uid <= MAX_UID:
        raise HTTPException(404)
    folder = await own_folder(web, user, folder_id)
    opened = await web.open_message(user.id, folder.name, uid)
    if opened is None:
        raise HTTPException(404)
    return folder, opened


_marking: set[asyncio.Task[None]] = set()


def mark_seen_later(web: Web, account_id: int, folder: str, uid: int) -> None:
    """Set \\Seen without making the reader wait for the index writer's commit.

    The page does not depend on it (the list greys the row itself); a failure
    is logged and the message simply stays unread.
    """
    async def mark() -> None:
        try:
            await web.set_flags(account_id, folder, [uid], add=frozenset({"\\Seen"}))
        except Exception:
            log.warning("could not mark %s/%s as seen", folder, uid, exc_info=True)

    task = asyncio.get_running_loop().create_task(mark())
    _marking.add(task)
    task.add_done_callback(_marking.discard)


def _sender(page: ReadPage) -> str:
    return page.view.sender[0][1] if page.view.sender else ""


@router.get("/mail/{folder_id}/{uid}")
async def read(request: Request, folder_id: int, uid: int, user: CurrentUser, web: Web,
               pages: Pages, mail: Mail, own: OwnPage, pane: int = 0, images: int = 0,
               sent: int = 0) -> Response:
    opened = await web.run(open_message, web.backends, user.id, folder_id, uid,
                           current_language())
    if opened is None:
        raise HTTPException(404)
    folder, page = opened.folder, opened.page
    if own and "\\Seen" not in opened.flags:
        mark_seen_later(web, user.id, folder.name, uid)
    trusted = page.remote_content and await web.run(mail.image_senders.trusted, user.id,
                                                     _sender(page))
    asked = remote_asked(request, web, user, folder_id, uid, images=images)
    context: dict[str, Any] = {
        "folder": folder, "folder_label": label_of(folder.name), "uid": uid, "msg": page,
        "view": page.view, "show_images": asked or trusted, "trusted": trusted,
        "images_query": images_query(web, user, folder_id, uid) if asked else "",
        "sender": _sender(page), "pane": bool(pane), "sent_notice": bool(sent),
        "flags": opened.flags,
    }
    if pane:
        return pages.render(request, "message_pane.html", **context)
    context.update(await mailbox_context(user, web, folder.id))
    return pages.render(request, "message.html", **context)


@router.get("/mail/{folder_id}/{uid}/body")
async def body(request: Request, folder_id: int, uid: int, user: CurrentUser, web: Web,
               mail: Mail) -> Response:
    _, opened = await own_file(web, user, folder_id, uid)
    with opened:
        span = whole_file(opened)
        allow = remote_asked(request, web, user, folder_id, uid)
        lang = current_language()
        document, blocked = await web.run(frame_content_file, span, allow_remote=allow,
                                          lang=lang)
        # The sender's standing permission is looked up only when something was blocked.
        if blocked and await web.run(mail.image_senders.trusted, user.id,
                                     await web.run(sender_address_file, span)):
            allow = True
            document, _ = await web.run(frame_content_file, span, allow_remote=True,
                                        lang=lang)
    return HTMLResponse(document, headers={
        "Content-Security-Policy": frame_csp(allow_remote=allow),
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
    })


async def _sender_of(web: Web, user: User, folder_id: int, uid: int) -> str:
    _, opened = await own_file(web, user, folder_id, uid)
    with opened:
        return await web.run(sender_address_file, whole_file(opened))


@router.post("/mail/{folder_id}/{uid}/trust-sender")
async def trust_sender(folder_id: int, uid: int, user: CurrentUser, web: Web,
                       mail: Mail, pane: int = 0) -> Response:
    sender = await _sender_of(web, user, folder_id, uid)
    if not sender or not await web.run(mail.image_senders.trust, user.id, sender):
        raise HTTPException(400)
    back = f"/mail/{folder_id}/{uid}" + ("?pane=1" if pane else "")
    return RedirectResponse(back, status_code=303)


@router.post("/mail/{folder_id}/{uid}/distrust-sender")
async def distrust_sender(folder_id: int, uid: int, user: CurrentUser, web: Web,
                          mail: Mail, pane: int = 0) -> Response:
    """Undo "always show images" for this message's sender."""
    sender = await _sender_of(web, user, folder_id, uid)
    await web.run(mail.image_senders.forget, user.id, sender)
    back = f"/mail/{folder_id}/{uid}" + ("?pane=1" if pane else "")
    return RedirectResponse(back, status_code=303)
