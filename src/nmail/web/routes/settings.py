"""Settings: account (display name, password), preferences (language, list, signature).

Each form posts and redirects back with ?saved=1 (works without JavaScript);
a refused value re-renders the form with the reason, status 400.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from nmail.accounts.service import CurrentPasswordRefused
from nmail.directory.errors import DirectoryError, WeakPassword
from nmail.web.deps import CurrentUser, Pages, User, Web, client_ip
from nmail.web.facade import MAX_LOGIN_DELAY
from nmail.web.i18n import LANGUAGES
from nmail.web.i18n import gettext as _
from nmail.web.prefs import MAX_SIGNATURE, PAGE_SIZES, Prefs
from nmail.web.time_zone import current_zone, zone_names

router = APIRouter()

SECTIONS = (
    ("account", "Account"), ("preferences", "Preferences"), ("rejects", "Reject list"),
    ("forwarding", "Forwarding"), ("vacation", "Vacation reply"),
)


def settings_page(request: Request, pages: Pages, user: User, screen: str,
                  status: int = 200, **context: Any) -> Response:
    return pages.render(request, f"settings_{screen}.html", status=status, section="settings",
                        screen=screen, sections=SECTIONS,
                        saved=request.query_params.get("saved") == "1", **context)


def saved(screen: str) -> Response:
    return RedirectResponse(f"/settings/{screen}?saved=1", status_code=303)


@router.get("/settings")
async def settings_home(user: CurrentUser) -> Response:
    return RedirectResponse("/settings/account", status_code=303)


@router.get("/settings/account")
async def account_form(request: Request, user: CurrentUser, pages: Pages) -> Response:
    return settings_page(request, pages, user, "account", name_error="", password_error="")


@router.post("/settings/account")
async def save_account(request: Request, user: CurrentUser, web: Web, pages: Pages,
                       display_name: Annotated[str, Form(max_length=200)] = "") -> Response:
    try:
        await web.settings.set_display_name(user.account, display_name)
    except DirectoryError as exc:
        return settings_page(request, pages, user, "account", 400,
                             name_error=_("This name cannot be used.") + f" ({exc})",
                             password_error="")
    return saved("account")


@router.post("/settings/password")
async def change_password(
    request: Request, user: CurrentUser, web: Web, pages: Pages,
    current: Annotated[str, Form(max_length=1024)] = "",
    new: Annotated[str, Form(max_length=1024)] = "",
    repeat: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    error = ""
    if new != repeat:
        error = _("The two new passwords differ.")
    else:
        try:
            await web.change_password(user.account, current, new, client_ip(request),
                                      user.session.id)
        except CurrentPasswordRefused as exc:
            if exc.delay:
                await asyncio.sleep(min(exc.delay, MAX_LOGIN_DELAY))
            error = (_("Too many failed logins. Try again in 15 minutes.")
                     if "too many" in str(exc) else _("The current password is wrong."))
        except WeakPassword as exc:
            error = _("This password is too weak.") + f" ({exc})"
        except DirectoryError as exc:
            error = str(exc)
    if error:
        return settings_page(request, pages, user, "account", 400, name_error="",
                             password_error=error)
    # Everyone else logged in as this user (a stolen session too) is logged out.
    await web.revoke_other_sessions(user.id, user.session.id)
    return saved("account")


@router.get("/settings/preferences")
async def preferences_form(request: Request, user: CurrentUser, web: Web,
                           pages: Pages) -> Response:
    prefs = await web.prefs(user.id)
    return settings_page(request, pages, user, "preferences", error="",
                         **_preference_fields(prefs, user))


@router.post("/settings/preferences")
async def save_preferences(
    request: Request, user: CurrentUser, web: Web, pages: Pages,
    language: Annotated[str, Form(max_length=8)] = "",
    page_size: Annotated[int, Form()] = 50,
    threads: Annotated[str, Form(max_length=5)] = "",
    signature: Annotated[str, Form(max_length=MAX_SIGNATURE + 100)] = "",
    time_zone: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        await web.update_prefs(user.id, language=language, page_size=page_size,
                               threads=threads == "on", signature=signature.replace("\r\n", "\n"),
                               time_zone=time_zone.strip())
    except ValueError as exc:
        prefs = await web.prefs(user.id)
        error = (_("“%(zone)s” is not a time zone this server knows. Choose one from the list.")
                 % {"zone": time_zone.strip()[:64]} if str(exc) == "time_zone"
                 else _("Something in the form is missing or wrong."))
        return settings_page(request, pages, user, "preferences", 400,
                             **_preference_fields(prefs, user), error=error)
    return saved("preferences")


def _preference_fields(prefs: Prefs, user: User) -> dict[str, Any]:
    return {"prefs": prefs, "page_sizes": PAGE_SIZES, "languages": LANGUAGES,
            "max_signature": MAX_SIGNATURE, "zones": zone_names(),
            "browser_zone": user.session.browser_zone, "zone_now": current_zone().key}
