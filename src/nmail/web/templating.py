"""Jinja2 rendering: one template per screen, autoescaped, translated, no inline script.

Every page extends `base.html`. A page gets `request`, `user` (None before
login), `csrf_token`, `lang`, `static(path)` (URL with a content hash, so
static files are cached for a year and still change on upgrade) and the
gettext functions. Pages carry no inline JavaScript (the CSP forbids it):
data for scripts goes in `data-*` attributes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from nmail.directory.names import display_domain
from nmail.web import i18n
from nmail.web.folder_views import label_of
from nmail.web.list_rows import rows_html
from nmail.web.plain_text import BIDI_CONTROLS
from nmail.web.time_zone import current_zone

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
SEOUL = ZoneInfo("Asia/Seoul")


def _static_versions() -> dict[str, str]:
    versions = {}
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            rel = path.relative_to(STATIC_DIR).as_posix()
            versions[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return versions


def human_size(size: int) -> str:
    """1536 -> "1.5 KB": the list's size column."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}".replace(
                ".0 ", " ")
        value /= 1024
    return f"{size} B"


def short_date(stamp: int, now: float, zone: ZoneInfo | None = None) -> str:
    """Today: 14:05; this year: 3월 4일 / Mar 4; older: 2023.03.04 / 2023-03-04.

    In `zone`, or the request's (web/time_zone.py)."""
    zone = zone or current_zone()
    when = datetime.fromtimestamp(stamp, zone)
    today = datetime.fromtimestamp(now, zone)
    korean = i18n.current_language() == "ko"
    if when.date() == today.date():
        return when.strftime("%H:%M")
    if when.year == today.year:
        return f"{when.month}월 {when.day}일" if korean else f"{when:%b} {when.day}"
    return when.strftime("%Y.%m.%d" if korean else "%Y-%m-%d")


def full_date(stamp: int, zone: ZoneInfo | None = None) -> str:
    return datetime.fromtimestamp(stamp, zone or current_zone()).strftime("%Y-%m-%d %H:%M")


def iso_date(stamp: int) -> str:
    """A `<time datetime>` value: ISO 8601 in UTC."""
    return datetime.fromtimestamp(stamp, UTC).isoformat()


def row_texts() -> dict[str, str]:
    """The message list's fixed words, in this request's language (list_rows.py)."""
    _ = i18n.gettext
    return {"select": _("Select"), "flag": _("Flag"), "unread": _("Unread"),
            "unknown": _("(unknown sender)"), "nosubject": _("(no subject)"),
            "answered": _("Answered"), "attach": _("Has attachments")}


def kept_gettext(limit: int = 4096) -> Callable[..., str]:
    """Jinja's newstyle `gettext` (the same results), keeping what a message without
    variables gives per language: the catalogs are fixed once loaded.

    A list page says ~55 fixed texts; through Jinja's wrapper each cost a
    context call, a catalog lookup, a Markup and a `%` format, ~7% of the
    page's CPU. `limit` bounds the memory should a template translate
    something other than a literal.
    """
    kept: dict[tuple[str, str, bool], str] = {}

    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        safe = bool(context.eval_ctx.autoescape)
        if variables:
            text = i18n.gettext(message)
            return (Markup(text) if safe else text) % variables  # noqa: S704
        key = (i18n.current_language(), message, safe)
        found = kept.get(key)
        if found is None:
            text = i18n.gettext(message)
            found = (Markup(text) if safe else text) % {}  # noqa: S704
            if len(kept) < limit:
                kept[key] = found
        return found

    return gettext


def unicode_domain(text: str) -> str:
    """`text`, an address, @domain or domain, with its domain in Unicode."""
    local, at, domain = text.rpartition("@")
    return local + at + display_domain(domain)


class Templates:
    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(directory)),
            autoescape=select_autoescape(["html", "xml"]),
            extensions=["jinja2.ext.i18n"],
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        i18n.load_catalogs()
        self.env.install_gettext_callables(  # type: ignore[attr-defined]
            i18n.gettext, i18n.ngettext, newstyle=True
        )
        self.env.globals["gettext"] = self.env.globals["_"] = kept_gettext()
        versions = _static_versions()
        # Markup: a page names ~25 static URLs, each then needs no escaping (names
        # are the templates' literals, versions hex).
        self.env.globals["static"] = lambda p: Markup(  # noqa: S704
            f"/static/{escape(p)}?v={versions.get(p, '0')}")
        self.env.filters["size"] = human_size
        # A stored address or domain (IDNA) as people write it: @광고.kr, not @xn--299aqd.kr.
        self.env.filters["unicode_domain"] = unicode_domain
        # A tab's title cannot isolate a subject's bidi overrides (<bdi> can't
        # be used there): they go, from the escaped text (escape() leaves
        # markup as it is and escapes the rest, so no markup is made here).
        self.env.filters["no_bidi"] = lambda text: Markup(  # noqa: S704
            BIDI_CONTROLS.sub("", escape(text)))
        self.env.globals["rows_html"] = rows_html
        self.env.globals["row_texts"] = row_texts
        self.env.globals["label_of"] = label_of
        # Compiled now, not by the first user after a restart (~100 ms on this machine).
        for name in ("base.html", "login.html", "mailbox.html", "_folders.html", "error.html",
                     "_message.html", "message.html"):
            self.env.get_template(name)
        self.env.filters["fulldate"] = full_date
        self.env.filters["isodate"] = iso_date

    @property
    def zone(self) -> ZoneInfo:
        """This request's time zone (the user's, the browser's or the server's)."""
        return current_zone()

    def page(self, name: str, **context: Any) -> str:
        """A page outside any route (the Guard's refusals): no user, no session."""
        return self.env.get_template(name).render(
            {"request": None, "user": None, "csrf_token": "", "lang": i18n.current_language(),
             **context})

    def render(self, request: Request, name: str, status: int = 200,
               headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        state = request.scope.get("state", {})
        session = state.get("session")
        page = {
            "request": request,
            "user": state.get("user"),
            "csrf_token": session.csrf if session is not None else "",
            "lang": i18n.current_language(),
            **context,
        }
        html = self.env.get_template(name).render(page)
        return HTMLResponse(html, status_code=status, headers=headers)
