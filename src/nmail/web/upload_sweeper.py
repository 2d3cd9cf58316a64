"""The schedule that removes attachments uploaded for messages never sent.

A user who closes the tab halfway through a message leaves files under
DATA/webmail-uploads; sweeping only when the same user uploads again would
keep them forever for a user who never comes back. So each web process
runs `Uploads.sweep_all` once at start and then every SWEEP_INTERVAL, in
the thread pool (it is file-system work), from the app's lifespan. Several
web processes may sweep at once: removing a file twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nmail.web.mail_services import build_mail_services

SWEEP_INTERVAL = 3600.0  # seconds; uploads live MAX_AGE (a day), so an hour late is fine
log = logging.getLogger(__name__)


async def sweep_forever(
    state: Any,
    interval: float = SWEEP_INTERVAL,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Sweep old uploads now and then every `interval` seconds until cancelled.

    `state` is the app's `app.state` (its `web` facade runs blocking work,
    its `backends` build the mail services when no request has yet). `sleep`
    waits out the interval (a test's steps the rounds instead).
    """
    while True:
        services = getattr(state, "webmsg", None)
        if services is None:
            services = state.webmsg = build_mail_services(state.backends)
        try:
            removed = await state.web.run(services.uploads.sweep_all)
            if removed:
                log.info("removed %d unsent upload files", removed)
        except Exception:  # a failed sweep is retried at the next interval
            log.warning("sweeping unsent uploads failed", exc_info=True)
        await sleep(interval)


def start(
    state: Any,
    interval: float = SWEEP_INTERVAL,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> asyncio.Task[None]:
    """The sweeping task on the running loop; cancel it at shutdown."""
    return asyncio.get_running_loop().create_task(sweep_forever(state, interval, sleep))
