"""Every router of the web app, one resource per module.

To add a screen: a module here with `router = APIRouter()`, its template in
`web/templates/`, its script (if any) in `web/static/`, and one line below.
"""

from __future__ import annotations

from fastapi import APIRouter

from nmail.web.routes import (
    compose,
    compose_send,
    events,
    login,
    mailbox,
    message,
    message_parts,
    selection,
)

ROUTERS: list[APIRouter] = [
    login.router,
    mailbox.router,
    selection.router,
    events.router,
    message.router,
    message_parts.router,
    compose.router,
    compose_send.router,
]
