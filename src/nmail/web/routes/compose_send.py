"""The compose form's posts: send, save a draft, upload an attachment, complete an address.

POST /compose/send        multipart form (?_csrf=); action=send (default) or save
POST /compose/upload      one file (X-CSRF-Token) -> {"id","name","size","type"}; 413 when over
POST /compose/upload/{id}/delete
GET  /compose/recipients?q=  -> [{"name","address"}], address-book groups first
                             as {"name","address": "","group": true,"members": n}
A refused send re-shows the form with what the user typed, the reason and
the address it concerns (400); nothing was sent then. A group's name in
To/Cc/Bcc is replaced by its members here, at send or save
(web/recipient_groups.py), so it works without JavaScript too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import IO

from fastapi import APIRouter, HTTPException, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from nmail.mailstore.model import StoreError
from nmail.mime.composing import ComposeError, OutgoingFile
from nmail.mime.file_parts import file_view
from nmail.web.compose_form import ComposeState, outgoing, parse_message_ref, parse_original
from nmail.web.compose_messages import field_message, group_message, quota_text, refusal_text
from nmail.web.compose_sources import carried_files, message_file
from nmail.web.deps import CurrentUser, Pages, User, Web, client_ip
from nmail.web.i18n import gettext as _
from nmail.web.mail_services import Mail, MailServices
from nmail.web.notices import notice_query
from nmail.web.outbox import Original
from nmail.web.recipient_groups import GroupError, expand, names_groups
from nmail.web.routes.compose import compose_page, uploads_view
from nmail.web.templating import human_size
from nmail.web.uploads import CHUNK, UploadQuotaFull, UploadTooLarge

router = APIRouter()
MAX_FILES = 50
MAX_FIELDS = 200
MAX_SUGGESTIONS = 10
UPLOAD_PIECE = 1 << 20  # bytes of an upload held before they are written to its spool file


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _state(form: FormData) -> ComposeState:
    parts = tuple(int(v) for v in form.getlist("carry_part")
                  if isinstance(v, str) and v.isdigit() and len(v) < 5)
    return ComposeState(
        to=_text(form, "to"), cc=_text(form, "cc"), bcc=_text(form, "bcc"),
        subject=_text(form, "subject"), body=_text(form, "body"),
        in_reply_to=_text(form, "in_reply_to"), references=_text(form, "references"),
        original=_text(form, "original"), attach_message=_text(form, "attach_message"),
        carry_from=_text(form, "carry_from"), carry_parts=parts, draft=_text(form, "draft"),
        uploads=tuple(v for v in form.getlist("upload") if isinstance(v, str))[:MAX_FILES],
        rich=_text(form, "rich") == "1",
        kind=kind if (kind := _text(form, "kind")) in ("reply", "forward") else "",
    )


async def with_groups(state: ComposeState, user: User, web: Web) -> ComposeState:
    """The form with every address-book group named in To/Cc/Bcc replaced by its members;
    GroupError when one is not a group with members."""
    if not any(names_groups(text) for text in (state.to, state.cc, state.bcc)):
        return state
    groups = await web.run(web.settings.contacts.group_members, user.id)

    def field(text: str, name: str) -> str:
        return expand(text, name, groups) if names_groups(text) else text
    return replace(state, to=field(state.to, "to"), cc=field(state.cc, "cc"),
                   bcc=field(state.bcc, "bcc"))


GONE = "gone"  # a ComposeError's text: the message a hidden field names is not there


async def _message_file(web: Web, user: User, mail: MailServices, state: ComposeState,
                        name: str, keep: ExitStack) -> IO[bytes]:
    """The message the hidden field `name` (attach_message) names, opened (`keep` closes
    it); ComposeError(name, GONE) when it is no message of this user's (forged, or
    deleted or moved since the form was drawn)."""
    opened = await message_file(web, user, mail, parse_message_ref(getattr(state, name)))
    if opened is None:
        raise ComposeError(name, GONE)
    keep.callback(opened.close)
    return opened


async def _files(form: FormData, state: ComposeState, user: User, web: Web,
                 mail: MailServices, keep: ExitStack
                 ) -> tuple[list[OutgoingFile], list[str], int]:
    """Uploaded (staged and direct) and carried attachments (those last), the staged
    tokens used, and how many were carried. A carried one is decoded from the
    original's file into a spool file (`keep` closes them); ComposeError(carry_from,
    GONE) when the original is not there any more (a part number it does not have is
    left out, as a forged one)."""
    files: list[OutgoingFile] = []
    used: list[str] = []
    for token in state.uploads:
        upload = await web.run(mail.uploads.get, user.id, token)
        if upload is not None:  # read from its file as the message is written
            files.append(OutgoingFile(upload.name, upload.content_type,
                                      mail.uploads.path(user.id, upload)))
            used.append(token)
    for item in form.getlist("files")[:MAX_FILES]:
        if isinstance(item, UploadFile) and item.filename:  # the form's spooled file
            files.append(OutgoingFile(item.filename, item.content_type or
                                      "application/octet-stream", item.file))
    carried: list[OutgoingFile] = []
    if state.carry_from and state.carry_parts:
        wanted = tuple(dict.fromkeys(state.carry_parts[:MAX_FILES]))
        found = await carried_files(web, user, mail, parse_message_ref(state.carry_from),
                                    wanted, keep)
        if found is None:
            raise ComposeError("carry_from", GONE)
        carried = found
    files += carried
    total = sum(await web.run(lambda: [f.size for f in files]))
    if total > mail.attachment_limit:
        raise ComposeError("attachment", "too large")
    return files, used, len(carried)


async def _attachment_numbers(web: Web, user: User, folder: str, uid: int) -> list[int]:
    """The numbers of a stored message's own attachments, read from its file (its
    text parts only)."""
    opened = await web.open_message(user.id, folder, uid)
    if opened is None:
        return []
    try:
        view, _parts = await web.run(file_view, opened)
    finally:
        await web.run(opened.close)
    return [a.number for a in view.attachments if not a.inline]


@router.post("/compose/send")
async def send(request: Request, user: CurrentUser, web: Web, pages: Pages,
               mail: Mail) -> Response:
    """Send or save; what the form named (the original, carried parts decoded) is open
    in files until the answer is made."""
    keep = ExitStack()
    try:
        return await _send(request, user, web, pages, mail, keep)
    finally:
        await web.run(keep.close)


async def _send(request: Request, user: User, web: Web, pages: Pages,
                mail: MailServices, keep: ExitStack) -> Response:
    form = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    state = _state(form)
    action = _text(form, "action") or "send"
    wants_json = "application/json" in request.headers.get("accept", "")
    typed = state
    try:
        state = await with_groups(state, user, web)
    except GroupError as error:
        text = group_message(error)
        if wants_json:
            return JSONResponse({"detail": text, "field": error.field}, status_code=400)
        return await compose_page(request, user, web, pages, mail, typed, status=400,
                                  error=text, error_field=error.field,
                                  uploads=await uploads_view(web, mail, user, typed.uploads))
    try:
        files, used, carried = await _files(form, state, user, web, mail, keep)
        attached = []
        if state.attach_message:
            attached.append(await _message_file(web, user, mail, state, "attach_message",
                                                keep))
        message = outgoing(state, (user.account.display_name, user.address),
                           html=_text(form, "html"), files=tuple(files), attached=tuple(attached),
                           require_recipient=action == "send")
    except ComposeError as error:
        if error.field == "attachment" and str(error) == "too large":
            text = _("The attachments are larger than the limit of %(limit)s.") % {
                "limit": human_size(mail.attachment_limit)}
        elif str(error) == GONE:
            # The form comes back without it, so a second send goes without it.
            text = _("The message this one forwards or takes attachments from is no longer "
                     "there (deleted or moved?), so it was left out. Nothing was sent: send "
                     "again without it, or forward it again from where it is now.")
            typed = (replace(typed, attach_message="") if error.field == "attach_message"
                     else replace(typed, carry_from="", carry_parts=()))
        else:
            text = field_message(error)
        if wants_json and str(error) == GONE and action == "save":
            # Autosave: the script drops the reference as the re-shown form does, says
            # this once and saves again at once; before, it kept the reference and failed
            # every 30 seconds, saving nothing.
            text = _("The message this draft forwards or takes attachments from is no longer "
                     "there (deleted or moved?), so it was left out of the draft.")
            return JSONResponse({"detail": text, "field": error.field,
                                 "dropped": error.field}, status_code=400)
        if wants_json:
            return JSONResponse({"detail": text, "field": error.field}, status_code=400)
        return await compose_page(request, user, web, pages, mail, typed, status=400,
                                  error=text, error_field=error.field,
                                  uploads=await uploads_view(web, mail, user, state.uploads))
    outbox = mail.outbox
    if outbox is None:
        raise HTTPException(503)
    draft_uid = int(state.draft) if state.draft.isdigit() and len(state.draft) < 19 else None
    if action == "save":
        try:
            new_uid = await web.run(outbox.save_draft, user.account, message, draft_uid)
        except StoreError as problem:
            text = _("The draft could not be saved: %(reason)s") % {"reason": str(problem)}
            if wants_json:
                return JSONResponse({"detail": text}, status_code=507)
            return await compose_page(request, user, web, pages, mail, state, status=507,
                                      error=text,
                                      uploads=await uploads_view(web, mail, user, state.uploads))
        drafts = await web.folder_named(user.id, "Drafts")
        numbers = await _attachment_numbers(web, user, "Drafts", new_uid)
        if wants_json:
            # Autosave: the form keeps its staged uploads (the next save needs them);
            # the carried attachments now come from the new draft, whose last parts they are.
            return JSONResponse({"draft": new_uid, "carry_from": f"{drafts.id}/{new_uid}",
                                 "carry_parts": numbers[len(numbers) - carried:]})
        # The form re-shown: everything it attaches now lives in the draft.
        for token in used:
            await web.run(mail.uploads.remove, user.id, token)
        saved = replace(state, draft=str(new_uid), uploads=(),
                        carry_from=f"{drafts.id}/{new_uid}", carry_parts=tuple(numbers))
        return await compose_page(request, user, web, pages, mail, saved,
                                  notice=_("Draft saved."))
    original = None
    found = parse_original(state.original)
    if found is not None:
        folder = await web.folder(user.id, found[0])
        if folder is not None and found[2]:
            original = Original(folder.name, found[1], found[2])  # type: ignore[arg-type]
    result = await web.run(outbox.send, user.account, message, client_ip(request), original)
    if not result.sent:
        text = _("The message was not sent.") + " " + " ".join(
            refusal_text(r) for r in result.refusals)
        if wants_json:
            return JSONResponse({"detail": text}, status_code=400)
        return await compose_page(request, user, web, pages, mail, typed, status=400,
                                  error=text, error_field="to",
                                  uploads=await uploads_view(web, mail, user, state.uploads))
    for token in used:
        await web.run(mail.uploads.remove, user.id, token)
    if draft_uid is not None:
        await web.run(outbox.discard_draft, user.account, draft_uid)
    if wants_json:
        return JSONResponse({"sent": True, "message_id": result.message_id})
    if found is not None:
        return RedirectResponse(f"/mail/{found[0]}/{found[1]}?sent=1", status_code=303)
    inbox = await web.folder_named(user.id, "INBOX")
    query = notice_query(web.notice_key, user.session.id, "sent", 1)
    return RedirectResponse(f"/mail/{inbox.id}{query}", status_code=303)


@router.post("/compose/upload")
async def upload(request: Request, user: CurrentUser, web: Web, mail: Mail,
                 name: str = "", already: int = 0) -> Response:
    """The request body is the file itself (a script sends it with progress events)."""
    limit = mail.attachment_limit
    declared = request.headers.get("content-length", "")
    too_large = _("The attachments are larger than the limit of %(limit)s.") % {
        "limit": human_size(limit)}
    if declared.isdigit() and int(declared) + max(0, already) > limit:
        return JSONResponse({"detail": too_large}, status_code=413)

    # The body goes to an unnamed file 1 MiB at a time (a 20 MiB upload was held
    # whole in a list of chunks, then written), and is staged from there.
    spool = await web.run(tempfile.TemporaryFile)
    try:
        pending: list[bytes] = []
        size = held = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size + max(0, already) > limit:
                return JSONResponse({"detail": too_large}, status_code=413)
            pending.append(chunk)
            held += len(chunk)
            if held >= UPLOAD_PIECE:
                await web.run(spool.writelines, pending)
                pending, held = [], 0
        await web.run(spool.writelines, pending)
        kind = request.headers.get("content-type", "application/octet-stream")
        saved = await web.run(mail.uploads.save, user.id, name or "attachment", kind,
                              _pieces(spool), limit, max(0, already))
    except UploadTooLarge:
        return JSONResponse({"detail": too_large}, status_code=413)
    except UploadQuotaFull as full:
        return JSONResponse({"detail": quota_text(full.reason, mail)}, status_code=413)
    finally:
        await web.run(spool.close)
    return JSONResponse({"id": saved.token, "name": saved.name, "size": saved.size,
                         "type": saved.content_type})


def _pieces(spool: IO[bytes]) -> Iterator[bytes]:
    """A spooled upload from its start, CHUNK bytes at a time (read in save's thread)."""
    spool.seek(0)
    while piece := spool.read(CHUNK):
        yield piece


@router.post("/compose/upload/{token}/delete")
async def delete_upload(token: str, user: CurrentUser, web: Web, mail: Mail) -> Response:
    await web.run(mail.uploads.remove, user.id, token)
    return Response(status_code=204)


@router.get("/compose/recipients")
async def recipients(user: CurrentUser, web: Web, mail: Mail, q: str = "") -> Response:
    text = q[:100]
    book: list[tuple[str, str]] = []
    lookup = getattr(web, "contacts_matching", None)  # the platform's address book, once there
    if callable(lookup) and text.strip():
        try:
            book = list(await lookup(user.id, text.strip(), MAX_SUGGESTIONS))
        except Exception:  # completion is a help; a failing address book must not break it
            book = []
    found = await web.run(mail.recipients.matching, user.id, text, book)
    groups = await web.run(web.settings.contacts.matching_groups, user.id, text,
                           MAX_SUGGESTIONS) if text.strip() else []
    return JSONResponse(
        [{"name": name, "address": "", "group": True, "members": count}
         for name, count in groups]
        + [{"name": name, "address": address} for name, address in found])
