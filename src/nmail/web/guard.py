"""One ASGI layer in front of every route: session, CSRF, language, security headers.

It runs before routing so no route can forget a check:
- the session cookie is looked up (thread pool) and put in scope["state"];
- every POST/PUT/PATCH/DELETE must carry the session's CSRF token (before
  login, POST /login the signed token bound to its cookie: web/login_tokens.py), in the
  `X-CSRF-Token` header (scripts), the `csrf_token` field of a urlencoded
  form, or the `_csrf` query parameter (multipart forms, whose body is not
  read here); otherwise 403 before any route runs. Paths that serve other
  programs (Outlook's autodiscover) are exempt;
- a request body may not be larger than web/body_limit.py allows (a login
  form without a session);
- a path with a number no row can have (past a signed 64-bit id: every id
  column is at most BIGINT) is 404 here, like an id that is not the user's:
  passed on, it reached SQL and came back as OverflowError (SQLite) or an
  out-of-range error (PostgreSQL), a 500 with a traceback for any visitor;
- the request's language is chosen (user setting, Accept-Language; a `?lang=`
  of the login page is kept in a cookie, Secure over TLS like the session's), and its
  time zone (user setting, the browser's from login, the server's);
- pages get a strict CSP (no inline script, no foreign origin), nosniff,
  no framing by others, and no referrer leaving the site. A route that sets
  its own Content-Security-Policy (message content) keeps it, with
  `frame-ancestors 'self'` added when it has none;
- nothing but /static/ may be stored by a browser or a proxy (`Cache-Control:
  no-store` unless the route says otherwise): a page of someone's mail must
  not come back from a shared cache or the back button after logout;
- a GET changes something only when it came from our own pages
  (`from_own_pages`): another site's link still opens the page, but it does
  not refresh the session's idle clock or remember a `?lang=`, and the routes
  with a side effect (marking a message read) ask the same function
  (deps.OwnPage).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.exceptions import HTTPException

from nmail.web import i18n, time_zone
from nmail.web.body_limit import body_limit, capped, declared_too_large, refuse_too_large
from nmail.web.client_address import forwarded_tls, real_client
from nmail.web.facade import WebFacade
from nmail.web.login_tokens import COOKIE as LOGIN_COOKIE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "nmail_session"
LANG_COOKIE = "nmail_lang"  # the language picked on the login page, before any account
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_EXEMPT = ("/autodiscover/", "/Autodiscover/")
NO_SESSION = ("/static/", "/healthz", "/.well-known/", "/mail/config-v1.1.xml")
MAX_FORM = 1024 * 1024
MAX_ID = 2**63 - 1  # BIGINT, the widest id column
OWN_FETCH_SITES = frozenset({"same-origin", "none"})  # "none": typed, a bookmark
_DEFAULT_PORTS = (":80", ":443")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", []) if k == name]


def cookies(scope: Scope) -> dict[str, str]:
    raw = _header(scope, b"cookie")
    if not raw:
        return {}
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:  # a malformed Cookie header is no session, not an error page
        return {}
    return {key: morsel.value for key, morsel in cookie.items()}


def _authority(netloc: str) -> str:
    """host[:port] lower case, without a default port (a proxy may end TLS, so the
    request's scheme says nothing about the browser's: either default is dropped)."""
    netloc = netloc.strip().lower().rsplit("@", 1)[-1]
    for port in _DEFAULT_PORTS:
        if netloc.endswith(port):
            return netloc[: -len(port)]
    return netloc


def from_own_pages(scope: Scope) -> bool:
    """Whether the browser says this request came from our own pages, or from the user
    (a typed address, a bookmark): only then may a GET change anything.

    A browser that sends Fetch Metadata is believed: Sec-Fetch-Site "same-origin" or
    "none", never "same-site" (another name under the same domain is another site) or
    "cross-site". Browsers send it only to secure origins (HTTPS, localhost); without
    it, Origin (when present) or else Referer must name the host the request was sent
    to. With none of the three, no: a page elsewhere can send a navigation with neither
    (`Referrer-Policy: no-referrer`) to a server on plain HTTP, while our own pages
    always send a Referer (their policy is `same-origin`), so what is lost is only a
    typed address on plain HTTP or a client sending no headers (the page opens as
    always; nothing is marked).
    """
    site = _header(scope, b"sec-fetch-site")
    if site is not None:
        return site.strip().lower() in OWN_FETCH_SITES
    host = _authority(_header(scope, b"host") or "")
    if not host:
        return False
    for name in (b"origin", b"referer"):
        value = _header(scope, name)
        if value:
            try:
                netloc = urlsplit(value.strip()).netloc
            except ValueError:  # a malformed URL (bad IPv6 brackets) names no host
                return False
            return bool(netloc) and _authority(netloc) == host
    return False


def impossible_id(path: str) -> bool:
    """A path segment that is a number past every id column (so no row's id)."""
    return any(part.isascii() and part.isdigit() and (len(part) > 19 or int(part) > MAX_ID)
               for part in path.split("/"))


async def _forbidden(send: Send, text: str, status: int = 403,
                     page: Callable[..., str] | None = None) -> None:
    """The refusal as text, or as the error page (`page`) when a browser asked for HTML."""
    kind = b"text/plain; charset=utf-8"
    body = text.encode("utf-8")
    if page is not None:
        kind = b"text/html; charset=utf-8"
        body = page("error.html", status_code=status, message=text).encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: ASGIApp, web: WebFacade,
                 page: Callable[..., str] | None = None) -> None:
        self.app = app
        self.web = web
        self.page = page  # Templates.page: a refusal a person sees is a page, not bare text
        self.server_zone = time_zone.zone_or_none(web.backends.settings.time_zone) or (
            time_zone.current_zone())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        settings = self.web.backends.settings
        peer = (scope.get("client") or ("", 0))[0]
        state = scope.setdefault("state", {})
        state["client_ip"] = real_client(peer, _headers(scope, b"x-forwarded-for"),
                                         settings.trusted_proxies)
        state["tls"] = scope.get("scheme") == "https" or forwarded_tls(
            peer, _header(scope, b"x-forwarded-proto"), settings.trusted_proxies)
        session = None
        account = None
        jar = cookies(scope)
        own = from_own_pages(scope)
        if not path.startswith(NO_SESSION):
            token = jar.get(COOKIE, "")
            if token:  # another site's link does not keep the session alive (a POST
                # without our token is refused below, and a cross-site one has no cookie)
                session, account = await self.web.load_session(
                    token, touch=own or scope["method"] in UNSAFE)
        state["session"] = session
        state["account"] = account
        asked = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang")
                 or [""])[0]
        asked = asked if asked in i18n.LANGUAGES else ""
        preferred = (session.language if session and session.language else "") or asked or (
            jar.get(LANG_COOKIE, ""))
        language = i18n.negotiate(preferred, _header(scope, b"accept-language"))
        state["language"] = language
        remember = asked if own else ""  # a ?lang= in another site's link: this page only
        marker = i18n.set_language(language)
        zone = (time_zone.zone_or_none(session.time_zone) if session and session.time_zone
                else None) or self.server_zone
        zone_marker = time_zone.set_zone(zone)
        private = not path.startswith("/static/")
        refusing = self._with_headers(send, "", private)  # the guard's own answers too
        try:
            logged_in = session is not None and session.account_id is not None
            limit = body_limit(logged_in, self.web.backends.config.smtp.max_message_size)
            if declared_too_large(_header(scope, b"content-length"), limit):
                await refuse_too_large(refusing, i18n.gettext("That is too large."))
                return
            receive = capped(receive, limit)
            if scope["method"] in UNSAFE and not path.startswith(CSRF_EXEMPT):
                try:
                    checked = await self._check_csrf(scope, receive, refusing, session,
                                                     jar.get(LOGIN_COOKIE, ""))
                except HTTPException:  # the form passed the body limit while read here
                    await refuse_too_large(refusing, i18n.gettext("That is too large."))
                    return
                if checked is None:
                    return
                receive = checked
            if impossible_id(path):
                await _forbidden(refusing, i18n.gettext(
                    "There is nothing here. The message or folder may have been moved or "
                    "deleted."), 404, self._page_for(scope))
                return
            mode = settings.secure_cookies  # as deps.set_session_cookie decides
            secure = mode == "always" or (mode == "auto" and bool(state["tls"]))
            await self.app(scope, receive, self._with_headers(send, remember, private, secure))
        finally:
            time_zone.reset_zone(zone_marker)
            i18n._current.reset(marker)

    def _page_for(self, scope: Scope) -> Callable[..., str] | None:
        """The error page's renderer when a browser navigated here (not a script's fetch)."""
        accept = _header(scope, b"accept") or ""
        if "text/html" not in accept or _header(scope, b"x-csrf-token"):
            return None
        return self.page

    async def _check_csrf(self, scope: Scope, receive: Receive, send: Send,
                          session: Any, login_cookie: str) -> Receive | None:
        expected: str = session.csrf if session is not None else ""
        given = _header(scope, b"x-csrf-token") or ""
        if not given:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("_csrf") or [""])[0]
        replay: list[Message] = []
        content_type = (_header(scope, b"content-type") or "").lower()
        if not given and content_type.startswith("application/x-www-form-urlencoded"):
            body = b""
            more = True
            while more:
                message = await receive()
                replay.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > MAX_FORM:
                    break
            fields = parse_qs(body.decode("latin-1"))
            given = (fields.get("csrf_token") or [""])[0]
        if expected:
            good = bool(given) and hmac.compare_digest(expected, given)
        else:
            # No session: only the login form, whose token is bound to its cookie.
            good = scope.get("path") == "/login" and self.web.login_tokens.valid(
                login_cookie, given)
        if not good:
            await _forbidden(send, i18n.gettext(
                "This form has expired. Go back, reload the page and try again."), 403,
                self._page_for(scope))
            return None
        if not replay:
            return receive

        async def replayed() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()
        return replayed

    def _with_headers(self, send: Send, language: str, private: bool,
                      secure: bool = False) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                else:  # a route's own policy (downloads, source) is not framed by others either
                    headers = [(k, v + b"; frame-ancestors 'self'")
                               if k.lower() == b"content-security-policy"
                               and b"frame-ancestors" not in v else (k, v) for k, v in headers]
                if b"x-frame-options" not in names:
                    headers.append((b"x-frame-options", b"SAMEORIGIN"))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"referrer-policy" not in names:  # the message frame's no-referrer wins
                    headers.append((b"referrer-policy", b"same-origin"))
                if private and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if language:
                    headers.append((b"set-cookie", (
                        f"{LANG_COOKIE}={language}; Path=/; Max-Age=31536000; SameSite=Lax; "
                        "HttpOnly" + ("; Secure" if secure else "")).encode()))
                message["headers"] = headers
            await send(message)
        return sending
