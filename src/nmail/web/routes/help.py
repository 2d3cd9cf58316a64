"""Help written for this server: mail program settings and the return-mail guide.

The client page shows this server's real host name and the ports its
listeners use (the same facts autoconfig serves); the return-mail guide is
the bounce room's category catalogue, in the reader's language.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from nmail.bounce.catalogue import CATEGORIES
from nmail.web.deps import CurrentUser, Pages, User, Web
from nmail.web.i18n import current_language

router = APIRouter()


@router.get("/help")
async def help_home(user: CurrentUser) -> Response:
    return RedirectResponse("/help/clients", status_code=303)


@router.get("/help/clients")
async def client_help(request: Request, web: Web, pages: Pages) -> Response:
    """Public (also linked from the login page): nothing here is secret."""
    endpoints = web.backends.endpoints()
    quota = 0
    session = request.scope["state"].get("session")
    if session is not None and session.account_id is not None:
        account = await web.account(session.account_id)
        if account is not None:
            quota = account.quota_bytes
            request.scope["state"]["user"] = User(account, session)
    return pages.render(request, "help_clients.html", section="help", screen="clients",
                        endpoints=endpoints, quota=quota)


@router.get("/help/returnmail")
async def return_mail_help(request: Request, user: CurrentUser, pages: Pages) -> Response:
    lang = current_language()
    categories = [
        {"id": c.id, "title": c.title(lang), "explanation": c.explanation(lang),
         "remedy": c.remedy(lang), "examples": c.examples}
        for c in CATEGORIES
    ]
    return pages.render(request, "help_returnmail.html", section="help", screen="returnmail",
                        categories=categories)
