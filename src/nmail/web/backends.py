"""What the web app's own code is built from: the WebContext plus the `[web]` settings.

`create_app(context)` (secserver's contract, web/context.py) turns the
context into WebBackends once: the `[web]` section is parsed here, and the
clock and later rooms' services (change feed, search) hang off it, so no
route reaches a global.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from sqlalchemy import Engine

from nmail.config import Config
from nmail.delivery.intake import Intake
from nmail.directory import Directory
from nmail.directory.login_gate import PasswordGate
from nmail.directory.throttle import LoginThrottle
from nmail.mailstore.store import MailStore
from nmail.web.context import WebContext
from nmail.web.endpoints import ClientEndpoints
from nmail.web.web_settings import WebSettings, web_settings


@dataclass(frozen=True, slots=True)
class WebBackends:
    config: Config
    settings: WebSettings
    engine: Engine
    directory: Directory
    store: MailStore
    throttle: LoginThrottle
    endpoints: Callable[[], ClientEndpoints]
    executor: Executor | None = None
    clock: Callable[[], float] = time.time
    intake: Intake | None = None  # sending; None in a web app that only reads
    login_gate: PasswordGate | None = None  # the process's (None: the login service's own)


def backends_from_context(context: WebContext) -> WebBackends:
    return WebBackends(
        config=context.config,
        settings=web_settings(context.config.raw),
        engine=context.engine,
        directory=context.directory,
        store=context.store,
        throttle=context.throttle,
        endpoints=context.client_endpoints,
        executor=context.executor,
        intake=context.intake,
        login_gate=context.login_gate,
    )
