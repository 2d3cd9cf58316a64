"""Every router of the web app, one resource per module.

To add a screen: a module here with `router = APIRouter()`, its template in
`web/templates/`, its script (if any) in `web/static/`, and one line below.
"""

from __future__ import annotations

from fastapi import APIRouter

from nmail.web.routes import events, login, mailbox, selection

ROUTERS: list[APIRouter] = [
    login.router,
    mailbox.router,
    selection.router,
    events.router,
]
