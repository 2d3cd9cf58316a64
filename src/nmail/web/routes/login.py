"""Log in and out. The domain comes from the host the browser opened.

GET /login makes a pre-login session (it carries the form's CSRF token);
a good POST deletes it and makes a new one, so a session id planted before
login is dead after it. Failures are throttled with SMTP AUTH and POP3 on
the client's real address, and every failure gets the same answer.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from nmail.web.access import domain_for_host
from nmail.web.deps import Pages, Web, clear_session_cookie, client_ip, set_session_cookie
from nmail.web.facade import LoginStatus
from nmail.web.i18n import N_
from nmail.web.i18n import gettext as _

router = APIRouter()

_MESSAGES = {
    LoginStatus.BAD: N_("The user id or password is wrong."),
    LoginStatus.LOCKED: N_("Too many failed logins. Try again in 15 minutes."),
    LoginStatus.DISABLED: N_("This account may not log in. Ask your administrator."),
    LoginStatus.FAILED: N_("The server could not check your login. Try again in a moment."),
}


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no //evil.example, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


def _host_domain(request: Request, web: Web) -> str | None:
    b = web.backends
    return domain_for_host(request.headers.get("host"), b.settings, b.directory.is_hosted)


async def _login_page(request: Request, web: Web, pages: Pages, *, error: str = "",
                      login: str = "", status: int = 200, next_url: str = "/") -> Response:
    state = request.scope["state"]
    token = None
    if state.get("session") is None:
        token, state["session"] = await web.new_session(None, client_ip(request))
    domain = await web.run(_host_domain, request, web)
    response = pages.render(request, "login.html", status=status, error=error, login=login,
                            domain=domain or "", next_url=next_url)
    response.headers["cache-control"] = "no-store"
    if token is not None:
        set_session_cookie(response, request, token)
    return response


@router.get("/login")
async def login_form(request: Request, web: Web, pages: Pages,
                     next: str | None = None) -> Response:
    session = request.scope["state"].get("session")
    if session is not None and session.account_id is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return await _login_page(request, web, pages, next_url=_safe_next(next))


@router.post("/login")
async def login(
    request: Request, web: Web, pages: Pages,
    userid: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    ip = client_ip(request)
    domain = await web.run(_host_domain, request, web)
    outcome = await web.login(userid, password, ip, domain)
    if outcome.status is not LoginStatus.OK or outcome.account is None:
        if outcome.delay:
            await asyncio.sleep(outcome.delay)
        return await _login_page(request, web, pages, error=_(_MESSAGES[outcome.status]),
                                 login=userid, status=401, next_url=_safe_next(next))
    old = request.scope["state"].get("session")
    if old is not None:
        await web.end_session(old.id)
    token, session = await web.new_session(outcome.account.id, ip)
    request.scope["state"]["session"] = session
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request, web: Web) -> Response:
    session = request.scope["state"].get("session")
    if session is not None:
        await web.end_session(session.id)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response
