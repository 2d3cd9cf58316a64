"""Log in and out. The domain comes from the host the browser opened.

GET /login writes nothing: the form's CSRF token is signed and bound to a
random cookie (web/login_tokens.py), so a flood of cookieless GETs costs no
row. A good POST makes the session, always a new one (and ends any session
the browser still presented), so a session id planted before login is dead
after it. Failures are throttled with SMTP AUTH and POP3 on
the client's real address, and every failure gets the same answer.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from nmail.web.access import domain_for_host
from nmail.web.deps import Pages, Web, clear_session_cookie, client_ip, set_session_cookie
from nmail.web.facade import LoginStatus
from nmail.web.i18n import LANGUAGES, N_
from nmail.web.i18n import gettext as _
from nmail.web.login_tokens import COOKIE as LOGIN_COOKIE
from nmail.web.login_tokens import well_formed
from nmail.web.time_zone import zone_or_none

router = APIRouter()

_MESSAGES = {
    LoginStatus.BAD: N_("The user id or password is wrong."),
    LoginStatus.LOCKED: N_("Too many failed logins. Try again in 15 minutes."),
    LoginStatus.DISABLED: N_("This account may not log in. Ask your administrator."),
    LoginStatus.FAILED: N_("The server could not check your login. Try again in a moment."),
    LoginStatus.BUSY: N_("The server is checking too many logins at once. "
                         "Try again in a moment."),
}
BUSY_RETRY_AFTER = "5"  # seconds, for a 503 when too many password checks run at once


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
    session = request.scope["state"].get("session")
    cookie = ""
    extra: dict[str, Any] = {}
    if session is None:
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if not well_formed(cookie):
            cookie = web.login_tokens.new_cookie()
        extra["csrf_token"] = web.login_tokens.token_for(cookie)
    domain = await web.run(_host_domain, request, web)
    # A language picked by a link (?lang=) goes on with the form: the guard remembers it
    # from our own pages only, and a link from elsewhere (a portal) is not one.
    picked = request.query_params.get("lang", "")
    response = pages.render(request, "login.html", status=status, error=error, login=login,
                            domain=domain or "", next_url=next_url,
                            picked_lang=picked if picked in LANGUAGES else "",
                            ended=request.query_params.get("ended") == "1" and not error,
                            **extra)
    response.headers["cache-control"] = "no-store"
    if cookie:
        set_session_cookie(response, request, cookie, name=LOGIN_COOKIE, path="/login")
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
    timezone: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ip = client_ip(request)
    domain = await web.run(_host_domain, request, web)
    outcome = await web.login(userid, password, ip, domain)
    if outcome.status is not LoginStatus.OK or outcome.account is None:
        if outcome.delay:
            await asyncio.sleep(outcome.delay)
        busy = outcome.status is LoginStatus.BUSY
        page = await _login_page(request, web, pages, error=_(_MESSAGES[outcome.status]),
                                 login=userid, status=503 if busy else 401,
                                 next_url=_safe_next(next))
        if busy:
            page.headers["retry-after"] = BUSY_RETRY_AFTER
        return page
    old = request.scope["state"].get("session")
    if old is not None:
        await web.end_session(old.id)
    # The browser's zone (filled in by nmail.js, like Roundcube's _timezone); a name
    # zoneinfo does not know is dropped: the server's zone is used then.
    zone = timezone.strip() if zone_or_none(timezone.strip()) is not None else ""
    token, session = await web.new_session(outcome.account.id, ip, zone)
    request.scope["state"]["session"] = session
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, request, token)
    response.delete_cookie(LOGIN_COOKIE, path="/login", httponly=True, samesite="lax")
    return response


@router.post("/logout")
async def logout(request: Request, web: Web) -> Response:
    session = request.scope["state"].get("session")
    if session is not None:
        await web.end_session(session.id)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response
