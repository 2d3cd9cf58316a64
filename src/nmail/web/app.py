"""The web application factory (no engine or state at import time)."""

from __future__ import annotations

from fastapi import FastAPI

from nmail.web import autoconfig
from nmail.web.context import WebContext


def create_app(context: WebContext) -> FastAPI:
    """The whole web app, built from the core's services (see web/context.py)."""
    app = FastAPI(title="nmail", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(autoconfig.router(context.client_endpoints, context.directory.is_hosted))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
