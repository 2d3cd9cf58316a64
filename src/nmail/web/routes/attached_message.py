"""A message attached to another (a forward as attachment, a bounce's original), opened in place.

GET /mail/{folder_id}/{uid}/msg/{path}                 its read screen (?pane=1, ?images=1)
GET /mail/{folder_id}/{uid}/msg/{path}/body            its HTML body's sandboxed document (?show=)
GET /mail/{folder_id}/{uid}/msg/{path}/part/{n}        one of its attachments
GET /mail/{folder_id}/{uid}/msg/{path}/attachments.zip all of them
GET /mail/{folder_id}/{uid}/msg/{path}/source          its source (?download=1: as .eml)
GET /mail/{folder_id}/{uid}/msg/{path}/print           its print view (?show=: web/image_grant.py)
(Replying to it and forwarding it: /compose/{reply,reply-all,forward,forward-attached}/
{folder_id}/{uid}/msg/{path}, routes/compose.py.)

`path` is the attachment's part number in the outer message, then (".2")
in each message inside it (`mime.reading.attached_message`). The inner
message is shown by the same template, sanitizer, frame and CSP as any
other: it is just as much the sender's bytes. Flags and the "always show
images from" list belong to the stored message, so the inner view offers
neither; it can be printed, replied to and forwarded (inline with its own
attachments carried, or whole as message/rfc822), like a stored one: the
answer goes to the inner message's sender and thread, and marks nothing.
A path that does not lead to an attached message, like another user's
folder or message, is 404.

The inner message is read where it is in the outer message's file (its part's
file offsets, `attached_span` in mime/file_parts.py; only one sent in base64 or
quoted-printable, against RFC 2046, is decoded a piece at a time into an
unnamed spool file), and every view works on it as on a stored message
(web/page_files.py, web/part_downloads.py): with a 20 MiB message attached,
each view grew the web process's peak RSS by the outer message read whole plus
the inner one decoded (55 MiB for the read screen, frame or print view, 108 for
the attachment, 128 for "download all"), now about 2 MiB each
(tests/test_web_read_memory.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import HTMLResponse, Response

from nmail.mailstore.model import FolderInfo
from nmail.mime.file_parts import Span, attached_span, whole_file
from nmail.mime.reading import is_attached_path
from nmail.web.compose_sources import spool_files
from nmail.web.deps import CurrentUser, Pages, User, Web
from nmail.web.folder_views import label_of
from nmail.web.i18n import current_language
from nmail.web.image_grant import images_query, remote_asked
from nmail.web.mail_services import Mail, MailServices
from nmail.web.message_html import frame_csp
from nmail.web.page_files import frame_content_file, read_page_file
from nmail.web.routes.mailbox import mailbox_context
from nmail.web.routes.message import own_file
from nmail.web.routes.message_parts import (
    part_response,
    print_response,
    source_response,
    zip_response,
)

router = APIRouter()
PREFIX = "/mail/{folder_id}/{uid}/msg/{path}"


async def attached_opened(web: Web, user: User, mail: MailServices, folder_id: int,
                          uid: int, path: str) -> tuple[FolderInfo, Span]:
    """The outer message's folder and where the attached message is (the caller closes
    its file); 404 unless both exist and are this user's."""
    if not is_attached_path(path):
        raise HTTPException(404)
    folder, outer = await own_file(web, user, folder_id, uid)
    try:
        inner = await web.run(attached_span, whole_file(outer), path, spool_files(mail))
    except BaseException:
        outer.close()
        raise
    if inner is None or inner.file is not outer:
        outer.close()
    if inner is None:
        raise HTTPException(404)
    return folder, inner


@router.get(PREFIX)
async def read_attached(request: Request, folder_id: int, uid: int, path: str,
                        user: CurrentUser, web: Web, pages: Pages, mail: Mail, pane: int = 0,
                        images: int = 0) -> Response:
    folder, inner = await attached_opened(web, user, mail, folder_id, uid, path)
    with inner.file:
        page = await web.run(read_page_file, inner, current_language())
    asked = remote_asked(request, web, user, folder_id, uid, path, images=images)
    context: dict[str, Any] = {
        "folder": folder, "folder_label": label_of(folder.name), "uid": uid, "msg": page,
        "view": page.view, "show_images": asked, "trusted": False, "sender": "",
        "images_query": images_query(web, user, folder_id, uid, path) if asked else "",
        "pane": bool(pane), "sent_notice": False, "flags": frozenset(),
        "attached_path": path,
    }
    if pane:
        return pages.render(request, "message_pane.html", **context)
    context.update(await mailbox_context(user, web, folder.id))
    return pages.render(request, "message.html", **context)


@router.get(PREFIX + "/body")
async def attached_body(request: Request, folder_id: int, uid: int, path: str,
                        user: CurrentUser, web: Web, mail: Mail) -> Response:
    allow = remote_asked(request, web, user, folder_id, uid, path)
    _, inner = await attached_opened(web, user, mail, folder_id, uid, path)
    with inner.file:
        document, _blocked = await web.run(frame_content_file, inner,
                                           allow_remote=allow, lang=current_language())
    return HTMLResponse(document, headers={
        "Content-Security-Policy": frame_csp(allow_remote=allow),
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
    })


@router.get(PREFIX + "/part/{number}")
async def attached_part(folder_id: int, uid: int, path: str, number: int, user: CurrentUser,
                        web: Web, mail: Mail, preview: int = 0) -> Response:
    _, inner = await attached_opened(web, user, mail, folder_id, uid, path)
    return await part_response(web, inner, number, preview=bool(preview))


@router.get(PREFIX + "/attachments.zip")
async def attached_zip(folder_id: int, uid: int, path: str, user: CurrentUser,
                       web: Web, mail: Mail) -> Response:
    _, inner = await attached_opened(web, user, mail, folder_id, uid, path)
    return await zip_response(web, inner)


@router.get(PREFIX + "/source")
async def attached_source(request: Request, folder_id: int, uid: int, path: str,
                          user: CurrentUser, web: Web, pages: Pages, mail: Mail,
                          download: int = 0) -> Response:
    _, inner = await attached_opened(web, user, mail, folder_id, uid, path)
    return await source_response(request, web, pages, inner, f"message-{uid}-{path}.eml",
                                 download=bool(download))


@router.get(PREFIX + "/print")
async def attached_print(request: Request, folder_id: int, uid: int, path: str,
                         user: CurrentUser, web: Web, pages: Pages, mail: Mail) -> Response:
    allow = remote_asked(request, web, user, folder_id, uid, path)
    _, inner = await attached_opened(web, user, mail, folder_id, uid, path)
    with inner.file:
        return await print_response(request, web, pages, inner, allow_remote=allow)
