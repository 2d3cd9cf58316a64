"""A message's attachments, all of them as a ZIP, its source, and its print view.

Every download is `Content-Disposition: attachment` under a safe name with
`nosniff` and a sandboxing CSP, so nothing a sender attached can run as our
page. Only PNG, JPEG, GIF and WebP are ever shown inline (`?preview=1`);
SVG and HTML never are.
"""

from __future__ import annotations

import io
import re
import zipfile

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from nmail.mime.charsets import decode_bytes
from nmail.mime.reading import part_content, part_contents, read_view
from nmail.web.deps import CurrentUser, Pages, Web
from nmail.web.download_names import download_headers, safe_filename
from nmail.web.i18n import current_language
from nmail.web.mail_services import Mail
from nmail.web.message_html import frame_csp
from nmail.web.message_page import PREVIEW_TYPES, frame_html, read_page, sender_address
from nmail.web.routes.message import own_message

router = APIRouter()
_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
MAX_PART = 1000
_BASE = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


@router.get("/mail/{folder_id}/{uid}/part/{number}")
async def part(folder_id: int, uid: int, number: int, user: CurrentUser, web: Web,
               preview: int = 0) -> Response:
    _, raw = await own_message(web, user, folder_id, uid)
    return await part_response(web, raw, number, preview=bool(preview))


async def part_response(web: Web, raw: bytes, number: int, *, preview: bool) -> Response:
    """One part of `raw` as a download (or a raster image preview); 404 if there is none."""
    if not 0 <= number < MAX_PART:
        raise HTTPException(404)
    found = await web.run(part_content, raw, number)
    if found is None:
        raise HTTPException(404)
    info, data = found
    inline = preview and info.content_type in PREVIEW_TYPES
    kind = info.content_type if inline or _TYPE.match(info.content_type) else (
        "application/octet-stream")
    if not inline and (kind.startswith(("text/html", "image/svg", "application/xhtml",
                                        "text/xml", "application/xml"))
                       or "script" in kind):
        kind = "application/octet-stream"  # a download, never something a page can load
    return Response(data, media_type=kind,
                    headers=download_headers(info.filename, inline=inline))


def _zip(raw: bytes) -> bytes:
    view = read_view(raw)
    buffer = io.BytesIO()
    used: set[str] = set()
    listed = [a for a in view.attachments if not a.inline]
    contents = part_contents(raw, {a.number for a in listed})  # one pass for all
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for attachment in listed:
            found = contents.get(attachment.number)
            if found is None:
                continue
            name = safe_filename(attachment.filename)
            stem, dot, ext = name.rpartition(".")
            candidate, n = name, 2
            while candidate.lower() in used:
                candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
                n += 1
            used.add(candidate.lower())
            archive.writestr(candidate, found[1])
    return buffer.getvalue()


@router.get("/mail/{folder_id}/{uid}/attachments.zip")
async def all_attachments(folder_id: int, uid: int, user: CurrentUser, web: Web) -> Response:
    _, raw = await own_message(web, user, folder_id, uid)
    return await zip_response(web, raw)


async def zip_response(web: Web, raw: bytes) -> Response:
    """Every attachment of `raw` in one ZIP."""
    data = await web.run(_zip, raw)
    subject = (await web.run(read_view, raw)).subject or "attachments"
    return Response(data, media_type="application/zip",
                    headers=download_headers(safe_filename(subject[:60]) + ".zip"))


@router.get("/mail/{folder_id}/{uid}/source")
async def source(folder_id: int, uid: int, user: CurrentUser, web: Web,
                 download: int = 0) -> Response:
    _, raw = await own_message(web, user, folder_id, uid)
    return await source_response(web, raw, f"message-{uid}.eml", download=bool(download))


async def source_response(web: Web, raw: bytes, name: str, *, download: bool) -> Response:
    """A message's bytes: as text to look at, or as an .eml download."""
    if download:
        return Response(raw, media_type="message/rfc822", headers=download_headers(name))
    text = await web.run(decode_bytes, raw, None)
    return Response(text, media_type="text/plain; charset=utf-8", headers={
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })


@router.get("/mail/{folder_id}/{uid}/print")
async def print_view(request: Request, folder_id: int, uid: int, user: CurrentUser, web: Web,
                     pages: Pages, mail: Mail, images: int = 0) -> Response:
    """The message alone, for paper; HTML inline here under a sandboxing CSP of its own."""
    _, raw = await own_message(web, user, folder_id, uid)
    allow = bool(images) or await web.run(mail.image_senders.trusted, user.id,
                                          sender_address(raw))
    return await print_response(request, web, pages, raw, allow_remote=allow)


async def print_response(request: Request, web: Web, pages: Pages, raw: bytes, *,
                         allow_remote: bool) -> Response:
    """The print page of a message's bytes (a stored one, or one attached to it)."""
    lang = current_language()
    page = await web.run(read_page, raw, lang)
    body = ""
    if page.has_html:
        document = await web.run(frame_html, raw, allow_remote=allow_remote, lang=lang)
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
