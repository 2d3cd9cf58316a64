"""Writing: the compose form for a new message, a reply, a forward, a draft.

GET /compose                            new (?to= prefills)
GET /compose/{kind}/{folder_id}/{uid}             answer a stored message
GET /compose/{kind}/{folder_id}/{uid}/msg/{path}  answer a message attached inside it
    kind: reply, reply-all, forward (inline), forward-attached (as message/rfc822);
    also /compose?reply=F:U (reply_all=, forward=), the list's shortcut, which redirects.
    An answer to an attached message marks nothing: it is not stored.
GET /compose/draft/{folder_id}/{uid}    edit a draft
The form posts to /compose/send (see compose_send.py).

The eight answer URLs were eight routes, alike but for the kind: one handler now
serves them, the kind checked by a path convertor (`AnswerKind`), so a kind it does
not know matches no route and stays 404 (a checked parameter would have made it 422,
and a GET of /compose/upload/{token}/delete a 422 instead of a 405).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import RedirectResponse, Response

from nmail.mime.composing import parse_recipients
from nmail.mime.reading import MessageView
from nmail.web.compose_form import (
    ComposeState,
    MessageRef,
    Wording,
    draft_state,
    forward_state,
    parse_message_ref,
    reply_state,
    with_signature,
)
from nmail.web.compose_sources import message_view
from nmail.web.deps import CurrentUser, Pages, User, Web
from nmail.web.download_names import safe_filename
from nmail.web.i18n import gettext as _
from nmail.web.mail_services import Mail, MailServices
from nmail.web.routes.mailbox import mailbox_context, own_folder
from nmail.web.time_zone import current_zone

ANSWERS = ("reply", "reply-all", "forward", "forward-attached")


class AnswerKind(Convertor[str]):
    """A path segment that is one of ANSWERS, exactly; anything else matches no route."""

    regex = "|".join(re.escape(kind) for kind in sorted(ANSWERS, key=len, reverse=True))

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("answer", AnswerKind())  # before the routes below compile their paths
router = APIRouter()


def wording(view: MessageView) -> Wording:
    when = (datetime.fromtimestamp(view.date, current_zone()).strftime("%Y-%m-%d %H:%M")
            if view.date else "")
    name = (view.sender[0][0] or view.sender[0][1]) if view.sender else _("(unknown sender)")
    wrote = (_("On %(date)s, %(name)s wrote:") % {"date": when, "name": name} if when
             else _("%(name)s wrote:") % {"name": name})
    return Wording(
        wrote=wrote, forwarded=_("Forwarded message"),
        labels={"from": _("From"), "date": _("Date"), "subject": _("Subject"), "to": _("To"),
                "cc": _("Cc"), "date_value": when},
    )


async def uploads_view(web: Web, mail: MailServices, user: User,
                       tokens: tuple[str, ...]) -> list[dict[str, object]]:
    """The staged uploads a re-shown form still lists."""
    shown = []
    for token in tokens:
        found = await web.run(mail.uploads.get, user.id, token)
        if found is not None:
            shown.append({"id": found.token, "name": found.name, "size": found.size})
    return shown


async def carried_view(web: Web, user: User, mail: MailServices,
                       state: ComposeState) -> list[dict[str, object]]:
    """The attachments a forward or a draft brings along, for the form's list (read from
    the original's file: its attachments are not loaded)."""
    if not state.carry_parts:
        return []
    view = await message_view(web, user, mail, parse_message_ref(state.carry_from))
    if view is None:
        return []
    return [{"number": a.number, "name": safe_filename(a.filename), "size": a.size}
            for a in view.attachments if a.number in state.carry_parts]


async def compose_page(request: Request, user: User, web: Web, pages: Pages,
                       mail: MailServices, state: ComposeState, *, status: int = 200,
                       error: str = "", error_field: str = "", notice: str = "",
                       uploads: list[dict[str, object]] | None = None) -> Response:
    context = await mailbox_context(user, web, 0)  # no folder is the current one
    return pages.render(
        request, "compose.html", status=status, state=state, error=error,
        error_field=error_field, notice=notice, uploads=uploads or [],
        carried=await carried_view(web, user, mail, state),
        attachment_limit=mail.attachment_limit, can_send=mail.outbox is not None,
        sender=user.address, sender_name=user.account.display_name, **context,
    )


@router.get("/compose")
async def compose(request: Request, user: CurrentUser, web: Web, pages: Pages, mail: Mail,
                  to: str = "", subject: str = "", reply: str = "", reply_all: str = "",
                  forward: str = "") -> Response:
    for kind, target in (("reply", reply), ("reply-all", reply_all), ("forward", forward)):
        if target:  # the list's shortcut form: /compose?reply=<folder id>:<uid>
            folder_id, _, uid = target.partition(":")
            if not (folder_id.isdigit() and uid.isdigit()):
                raise HTTPException(404)
            return RedirectResponse(f"/compose/{kind}/{int(folder_id)}/{int(uid)}",
                                    status_code=303)
    prefs = await web.prefs(user.id)
    try:
        prefilled = ", ".join(a for _, a in parse_recipients(to, "to")) if to else ""
    except ValueError:
        prefilled = ""
    state = ComposeState(to=prefilled, subject=subject[:200].replace("\n", " ").replace("\r", " "),
                         body=with_signature("", prefs.signature))
    return await compose_page(request, user, web, pages, mail, state)


async def _own_addresses(web: Web, user: User) -> set[str]:
    directory = web.backends.directory
    owned = await web.run(directory.sender_addresses, user.address)
    return {user.address, *owned}


async def _answer(request: Request, folder_id: int, uid: int, user: User, web: Web,
                  pages: Pages, mail: MailServices, kind: str, path: str = "") -> Response:
    if kind not in ANSWERS and not (kind == "draft" and not path):
        raise HTTPException(404)  # the routes let no other through; nor does this
    view = await message_view(web, user, mail, MessageRef(folder_id, uid, path))
    if view is None:
        raise HTTPException(404)
    prefs = await web.prefs(user.id)
    words = wording(view)
    if kind in ("reply", "reply-all"):
        state = reply_state(view, folder_id, uid, await _own_addresses(web, user),
                            to_all=kind == "reply-all", wording=words, signature=prefs.signature)
    elif kind == "draft":
        state = draft_state(view, folder_id, uid)
    else:
        state = forward_state(view, folder_id, uid, attached=kind == "forward-attached",
                              wording=words, signature=prefs.signature, path=path)
    if path:  # the message answered is inside a stored one: no flag to set on either
        state = replace(state, original="")
    return await compose_page(request, user, web, pages, mail, state)


@router.get("/compose/{kind:answer}/{folder_id}/{uid}")
@router.get("/compose/{kind:answer}/{folder_id}/{uid}/msg/{path}")
async def answer_form(request: Request, kind: str, folder_id: int, uid: int, user: CurrentUser,
                      web: Web, pages: Pages, mail: Mail, path: str = "") -> Response:
    """Every kind of answer, to a stored message or to one attached inside it: the kind is
    checked by the path (`AnswerKind`), so an unknown one is 404 as before, not a 422."""
    return await _answer(request, folder_id, uid, user, web, pages, mail, kind, path)


@router.get("/compose/draft/{folder_id}/{uid}")
async def draft_form(request: Request, folder_id: int, uid: int, user: CurrentUser, web: Web,
                     pages: Pages, mail: Mail) -> Response:
    folder = await own_folder(web, user, folder_id)
    if folder.name != "Drafts":
        raise HTTPException(404)
    return await _answer(request, folder_id, uid, user, web, pages, mail, "draft")
