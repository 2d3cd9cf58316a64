"""FastAPI dependencies routes declare: the facade, templates, the current user.

    async def page(user: CurrentUser, web: Web, pages: Pages) -> Response: ...

`CurrentUser` sends a browser that is not logged in to /login (303) and a
script to 401; an account deleted or disabled since login loses its session.
`OwnPage` is True when the request came from our own pages or the user typed it
(guard.from_own_pages): a GET route does its side effect (marking a message read)
only then, so a link or an image on another site changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from nmail.directory.model import Account
from nmail.web.facade import WebFacade
from nmail.web.guard import COOKIE, from_own_pages
from nmail.web.sessions import Session
from nmail.web.templating import Templates


class LoginRequired(Exception):
    """Raised by CurrentUser; app.py answers 303 to /login or 401."""


@dataclass(frozen=True, slots=True)
class User:
    account: Account
    session: Session

    @property
    def id(self) -> int:
        return self.account.id

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def can_administer(self) -> bool:
        """Sees the admin console entry: the postmaster and domain administrators."""
        return self.account.is_server_admin or self.account.is_admin


# async on purpose: FastAPI runs a plain `def` dependency in a worker thread,
# two thread hops per request for a dictionary lookup.
async def get_web(request: Request) -> WebFacade:
    web: WebFacade = request.app.state.web
    return web


async def get_templates(request: Request) -> Templates:
    pages: Templates = request.app.state.templates
    return pages


Web = Annotated[WebFacade, Depends(get_web)]
Pages = Annotated[Templates, Depends(get_templates)]


async def current_user(request: Request, web: Web) -> User:
    state = request.scope["state"]
    session: Session | None = state.get("session")
    if session is None or session.account_id is None:
        raise LoginRequired
    account = state.get("account")  # read with the session by the guard
    if account is None or account.id != session.account_id:
        account = await web.account(session.account_id)
    if account is None or not account.login_enabled:
        await web.end_session(session.id)
        raise LoginRequired
    user = User(account, session)
    state["user"] = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def own_page(request: Request) -> bool:
    """May this GET change something? (guard.from_own_pages)"""
    return from_own_pages(request.scope)


OwnPage = Annotated[bool, Depends(own_page)]


def client_ip(request: Request) -> str:
    return str(request.scope["state"].get("client_ip") or "")


def set_session_cookie(response: Response, request: Request, token: str, *,
                       name: str = COOKIE, path: str = "/") -> None:
    """HttpOnly, SameSite=Lax, Secure over TLS (or always/never as configured)."""
    web: WebFacade = request.app.state.web
    mode = web.backends.settings.secure_cookies
    secure = mode == "always" or (mode == "auto" and bool(request.scope["state"].get("tls")))
    response.set_cookie(name, token, httponly=True, samesite="lax", secure=secure, path=path)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
