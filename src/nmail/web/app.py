"""The web application factory (no engine or state at import time)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from nmail.web import autoconfig
from nmail.web.endpoints import ClientEndpoints


def create_app(
    endpoints: Callable[[], ClientEndpoints], is_hosted: Callable[[str], bool]
) -> FastAPI:
    app = FastAPI(title="nmail", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(autoconfig.router(endpoints, is_hosted))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
