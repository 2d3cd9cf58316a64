"""The web application factory (no engine or state at import time).

`create_app(context)` builds the webmail, the help pages and client
autoconfiguration over the core services in `context` (web/context.py);
whoever starts the web process (nmail serve, a test) builds that. Routes
live one resource per module in `web/routes/` and are listed in
`routes.ROUTERS`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.client import responses
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from nmail.mailstore.model import BadUidSet
from nmail.web import autoconfig, i18n, upload_sweeper
from nmail.web.backends import backends_from_context
from nmail.web.context import WebContext
from nmail.web.deps import LoginRequired
from nmail.web.facade import WebFacade
from nmail.web.guard import COOKIE, Guard
from nmail.web.i18n import N_
from nmail.web.routes import ROUTERS
from nmail.web.templating import STATIC_DIR, Templates

_ERROR_TEXT = {
    400: N_("The request was not understood."),
    403: N_("You may not do that."),
    404: N_("There is nothing here. The message or folder may have been moved or deleted."),
    405: N_("That cannot be done here."),
    409: N_("That conflicts with something that already exists."),
    413: N_("That is too large."),
    422: N_("Something in the form is missing or wrong."),
    429: N_("Too many attempts. Wait a little and try again."),
    500: N_("Something went wrong on the server. Try again in a moment."),
    503: N_("The mail store is busy. Try again in a moment."),
}


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "X-CSRF-Token" not in request.headers


def create_app(context: WebContext) -> FastAPI:
    """The whole web app, built from the core's services (see web/context.py)."""
    backends = backends_from_context(context)
    web = WebFacade(backends)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = upload_sweeper.start(app.state)  # webmsg: unsent uploads go after a day
        await web.run(web.warm_up)  # before the first request, not during it
        yield
        sweeper.cancel()
        await web.changes.close()

    app = FastAPI(title="nmail", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    templates = Templates()
    app.state.web = web
    app.state.templates = templates
    app.state.backends = backends
    app.include_router(autoconfig.router(backends.endpoints, backends.directory.is_hosted))
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def error_page(request: Request, status: int, detail: str | None) -> Response:
        text = i18n.gettext(detail or _ERROR_TEXT.get(status, _ERROR_TEXT[400]))
        if not _wants_html(request):
            return JSONResponse({"detail": text}, status_code=status)
        return templates.render(request, "error.html", status=status, status_code=status,
                                message=text)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET" and _wants_html(request):
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            # A session cookie the server no longer knows: the session ran out (or was
            # ended elsewhere); the login page says so instead of just appearing.
            ended = "&ended=1" if request.cookies.get(COOKIE) else ""
            return RedirectResponse("/login?next=" + quote(target, safe="/") + ended,
                                    status_code=303)
        return JSONResponse({"detail": i18n.gettext("Log in first.")}, status_code=401)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        detail: str | None = exc.detail if isinstance(exc.detail, str) else None
        if detail == responses.get(exc.status_code):
            # `HTTPException(404)` carries Starlette's English "Not Found": say ours.
            detail = None
        response = error_page(request, exc.status_code, detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_page(request, exc.status_code, None)

    @app.exception_handler(RequestValidationError)
    async def bad_form(request: Request, exc: RequestValidationError) -> Response:
        return error_page(request, 422, None)

    # A value from the request the store cannot hold (a form's id past BIGINT, a UID
    # past 2^32-1, a NUL PostgreSQL refuses): the request is wrong, not the server.
    async def unrepresentable(request: Request, exc: Exception) -> Response:
        logging.getLogger(__name__).warning("web request refused: %s: %s", request.url.path,
                                            type(exc).__name__)
        return error_page(request, 400, None)

    for kind in (OverflowError, DataError, BadUidSet):
        app.add_exception_handler(kind, unrepresentable)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        logging.getLogger(__name__).exception("web request failed: %s", request.url.path)
        return error_page(request, 500, None)

    app.add_middleware(Guard, web=web, page=templates.page)
    return app
