"""A message's attachments, all of them as a ZIP, its source, and its print view.

The source is shown on a page of its own, up to a limit (web/source_page.py),
and downloaded whole.

Every download is `Content-Disposition: attachment` under a safe name with
`nosniff` and a sandboxing CSP, so nothing a sender attached can run as our
page. Only PNG, JPEG, GIF and WebP are ever shown inline (`?preview=1`);
SVG and HTML never are. Each is streamed from the message's file
(web/part_downloads.py: a 20 MiB attachment cost 108 MiB of peak RSS, now
2); the routes open the file after the same checks as the read screen and
hand it over to the response, which closes it.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from starlette.responses import Response

from nmail.mime.file_parts import Span, whole_file
from nmail.web.deps import CurrentUser, Pages, Web
from nmail.web.i18n import current_language
from nmail.web.image_grant import remote_asked
from nmail.web.mail_services import Mail
from nmail.web.message_html import frame_csp
from nmail.web.page_files import frame_content_file, read_page_file, sender_address_file
from nmail.web.part_downloads import part_of, part_stream, source_stream, zip_plan, zip_stream
from nmail.web.routes.message import own_file
from nmail.web.source_page import SOURCE_CSP, source_head

router = APIRouter()
_BASE = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


@router.get("/mail/{folder_id}/{uid}/part/{number}")
async def part(folder_id: int, uid: int, number: int, user: CurrentUser, web: Web,
               preview: int = 0) -> Response:
    _, opened = await own_file(web, user, folder_id, uid)
    return await part_response(web, whole_file(opened), number, preview=bool(preview))


async def part_response(web: Web, span: Span, number: int, *, preview: bool) -> Response:
    """One part of the message in `span` as a download (or a raster image preview); 404
    if there is none. Takes `span.file` over (the response closes it)."""
    try:
        found = await web.run(part_of, span, number)
    except BaseException:
        span.file.close()
        raise
    return part_stream(span.file, number, found, preview=preview)


@router.get("/mail/{folder_id}/{uid}/attachments.zip")
async def all_attachments(folder_id: int, uid: int, user: CurrentUser, web: Web) -> Response:
    _, opened = await own_file(web, user, folder_id, uid)
    return await zip_response(web, whole_file(opened))


async def zip_response(web: Web, span: Span) -> Response:
    """Every attachment of the message in `span` in one ZIP. Takes `span.file` over."""
    try:
        plan = await web.run(zip_plan, span)
    except BaseException:
        span.file.close()
        raise
    return zip_stream(span.file, plan)


@router.get("/mail/{folder_id}/{uid}/source")
async def source(request: Request, folder_id: int, uid: int, user: CurrentUser, web: Web,
                 pages: Pages, download: int = 0) -> Response:
    _, opened = await own_file(web, user, folder_id, uid)
    return await source_response(request, web, pages, whole_file(opened),
                                 f"message-{uid}.eml", download=bool(download))


async def source_response(request: Request, web: Web, pages: Pages, span: Span, name: str, *,
                          download: bool) -> Response:
    """A message's bytes: its head shown on a page (web/source_page.py), or all of them
    as an .eml download. Takes `span.file` over."""
    if download:
        return source_stream(span, name)
    with span.file:
        head = await web.run(source_head, span)
    return pages.render(request, "message_source.html", headers={
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
        "Content-Security-Policy": SOURCE_CSP,
    }, source=head, download_url=request.url.path + "?download=1")


@router.get("/mail/{folder_id}/{uid}/print")
async def print_view(request: Request, folder_id: int, uid: int, user: CurrentUser, web: Web,
                     pages: Pages, mail: Mail) -> Response:
    """The message alone, for paper; HTML inline here under a sandboxing CSP of its own.
    Remote images with the read screen's `?show=` token (web/image_grant.py) or from a
    trusted sender."""
    _, opened = await own_file(web, user, folder_id, uid)
    with opened:
        span = whole_file(opened)
        allow = remote_asked(request, web, user, folder_id, uid) or await web.run(
            mail.image_senders.trusted, user.id, await web.run(sender_address_file, span))
        return await print_response(request, web, pages, span, allow_remote=allow)


async def print_response(request: Request, web: Web, pages: Pages, span: Span, *,
                         allow_remote: bool) -> Response:
    """The print page of the message in `span` (a stored one, or one attached to it;
    the caller closes its file)."""
    lang = current_language()
    page = await web.run(read_page_file, span, lang)
    body = ""
    if page.has_html:
        document, _ = await web.run(frame_content_file, span, allow_remote=allow_remote,
                                    lang=lang)
        body = document.split("<body>", 1)[1].rsplit("</body>", 1)[0]
    # The one script allowed is our own print starter, named by its full URL. The URL
    # comes from the Host header: anything but a host name and port would write
    # directives into the policy (`Host: x; sandbox allow-same-origin`), so none then.
    base = str(request.base_url).rstrip("/")
    script = base + "/static/print.js" if _BASE.fullmatch(base) else "'none'"
    policy = frame_csp(allow_remote=allow_remote).replace(
        "style-src 'unsafe-inline'", f"style-src 'unsafe-inline'; script-src {script}"
    ).replace("sandbox allow-popups", "sandbox allow-scripts allow-modals allow-popups")
    return pages.render(request, "message_print.html", headers={
        "Content-Security-Policy": policy, "Cache-Control": "private, no-store",
    }, msg=page, view=page.view, html_body=body)
