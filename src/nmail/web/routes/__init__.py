"""Every router of the web app, one resource per module.

To add a screen: a module here with `router = APIRouter()`, its template in
`web/templates/`, its script (if any) in `web/static/`, and one line below.
"""

from __future__ import annotations

from fastapi import APIRouter

from nmail.web.routes import (
    admin,
    attached_message,
    compose,
    compose_send,
    contacts,
    events,
    folders,
    help,
    login,
    mail_rules,
    mailbox,
    message,
    message_parts,
    search,
    selection,
    settings,
)

ROUTERS: list[APIRouter] = [
    login.router,
    mailbox.router,
    selection.router,
    events.router,
    settings.router,
    mail_rules.router,
    contacts.router,
    search.router,
    help.router,
    folders.router,
    message.router,
    message_parts.router,
    attached_message.router,
    compose.router,
    compose_send.router,
    admin.router,
]
