"""Settings that change how mail is delivered: reject list, forwarding, vacation reply.

The reject list is the directory's (refused at SMTP with the seed's reply,
"550 You are registered as spammer (by user's reject list)"); forwarding and
the vacation reply are applied by delivery (delivery/rules.py).
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from nmail.directory.errors import DirectoryError
from nmail.directory.mail_rules import MAX_FORWARDS, Vacation
from nmail.web.deps import CurrentUser, Pages, Web
from nmail.web.i18n import gettext as _
from nmail.web.routes.settings import saved, settings_page
from nmail.web.time_zone import current_zone

router = APIRouter()
def _pattern(text: str) -> str:
    """A bare domain means the whole domain (the directory spells it @domain)."""
    text = text.strip()
    return text if "@" in text else "@" + text


_ADDRESS = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z0-9\-]{2,63}$")


@router.get("/settings/rejects")
async def rejects_form(request: Request, user: CurrentUser, web: Web, pages: Pages) -> Response:
    return settings_page(request, pages, user, "rejects",
                         rejects=await web.settings.rejects(user.account), error="")


@router.post("/settings/rejects/add")
async def add_reject(request: Request, user: CurrentUser, web: Web, pages: Pages,
                     pattern: Annotated[str, Form(max_length=320)] = "") -> Response:
    try:
        await web.settings.add_reject(user.account, _pattern(pattern))
    except DirectoryError as exc:
        return settings_page(request, pages, user, "rejects", 400,
                             rejects=await web.settings.rejects(user.account),
                             error=_("This cannot be added.") + f" ({exc})")
    return saved("rejects")


@router.post("/settings/rejects/add-many")
async def add_rejects(user: CurrentUser, web: Web,
                      patterns: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """From the "mark as spam" offer: several senders at once; known ones are skipped."""
    for pattern in patterns.split()[:10]:
        try:
            await web.settings.add_reject(user.account, _pattern(pattern))
        except DirectoryError:
            continue
    return saved("rejects")


@router.post("/settings/rejects/delete")
async def delete_reject(user: CurrentUser, web: Web,
                        pattern: Annotated[str, Form(max_length=320)] = "") -> Response:
    with contextlib.suppress(DirectoryError):  # already gone: the list shown next is the truth
        await web.settings.delete_reject(user.account, _pattern(pattern))
    return saved("rejects")


@router.get("/settings/forwarding")
async def forwarding_form(request: Request, user: CurrentUser, web: Web,
                          pages: Pages) -> Response:
    rules = await web.settings.mail_rules(user.id)
    return settings_page(request, pages, user, "forwarding", targets="\n".join(rules.forward_to),
                         keep=rules.keep_copy, error="", max_forwards=MAX_FORWARDS)


@router.post("/settings/forwarding")
async def save_forwarding(request: Request, user: CurrentUser, web: Web, pages: Pages,
                          targets: Annotated[str, Form(max_length=4000)] = "",
                          keep: Annotated[str, Form(max_length=5)] = "") -> Response:
    wanted = tuple(dict.fromkeys(t.strip().lower() for t in re.split(r"[\s,;]+", targets)
                                 if t.strip()))
    bad = [t for t in wanted if not _ADDRESS.match(t) or t == user.address]
    if bad or len(wanted) > MAX_FORWARDS:
        error = (_("Not a usable address: %(address)s") % {"address": bad[0]} if bad
                 else _("At most %(num)d addresses.") % {"num": MAX_FORWARDS})
        return settings_page(request, pages, user, "forwarding", 400, targets=targets,
                             keep=keep == "on", error=error, max_forwards=MAX_FORWARDS)
    await web.settings.set_forwarding(user.id, wanted, keep == "on" or not wanted)
    return saved("forwarding")


def _day(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, current_zone()).date().isoformat() if stamp else ""


@router.get("/settings/vacation")
async def vacation_form(request: Request, user: CurrentUser, web: Web,
                        pages: Pages) -> Response:
    on, vacation = await web.settings.vacation_settings(user.id)
    return settings_page(request, pages, user, "vacation", on=on, vacation=vacation,
                         until=_day(vacation.until), error="")


@router.post("/settings/vacation")
async def save_vacation(
    request: Request, user: CurrentUser, web: Web, pages: Pages,
    on: Annotated[str, Form(max_length=5)] = "",
    subject: Annotated[str, Form(max_length=200)] = "",
    body: Annotated[str, Form(max_length=8000)] = "",
    days: Annotated[int, Form()] = 7,
    until: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    stamp = 0
    error = ""
    if until:
        try:
            day = date.fromisoformat(until)
            stamp = int(datetime.combine(day, time(23, 59, 59), current_zone()).timestamp())
        except ValueError:
            error = _("The end date is not a date.")
    vacation = Vacation(" ".join(subject.split()), body.replace("\r\n", "\n"), days, stamp)
    if not error and on == "on" and not (vacation.subject or vacation.body):
        error = _("Write a subject or a message for the reply.")
    if not error:
        try:
            await web.settings.set_vacation(user.id, on == "on", vacation)
        except ValueError:
            error = _("Days must be between 1 and 365.")
    if error:
        return settings_page(request, pages, user, "vacation", 400, on=on == "on",
                             vacation=vacation, until=until, error=error)
    return saved("vacation")
