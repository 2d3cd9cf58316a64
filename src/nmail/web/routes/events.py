"""GET /events: Server-Sent Events telling an open mailbox page that folders changed.

The page re-reads its list when told (mailbox.js), so new mail shows up
without a reload and the tab title keeps the unread count. The stream wakes
on the change feed (mailstore/feed.py) and then compares the account's
folder MODSEQs (one small indexed SELECT): it speaks only when one moved.
It also looks every POLL seconds, so a lost feed event or a node without a
hub only delays the news.

An account holds at most MAX_STREAMS streams at once; one more is 429 (the
browser's EventSource then stops retrying: that tab refreshes by hand). Each
stream costs a feed subscription and a small SELECT every POLL seconds, and
nothing else bounded them: one logged-in script held 40 and counting (red
team). A browser opens one per tab, and HTTP/1.1 browsers six per host.

A stream ends with `event: logout` when its session does: at once when this
process ended it (logout, "sign out other sessions"), else at the next
look at the session row (every SESSION_CHECK seconds, and before any news).
Before, a logged-out tab's stream lived on for up to MAX_STREAM.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import StreamingResponse

from nmail.mailstore.feed import AsyncSubscription
from nmail.web.deps import CurrentUser, Web

router = APIRouter()
T = TypeVar("T")
POLL = 2.0
KEEPALIVE = 25.0
MAX_STREAM = 3600.0  # the browser reconnects by itself; a session revoked meanwhile ends it
MAX_STREAMS = 8  # per account
SESSION_CHECK = 10.0  # a session ended by another process (or node) stops its streams this late


class _CountedStream(StreamingResponse):
    """A stream that gives its place back however it ends (sent, cut, never started)."""

    def __init__(self, content: AsyncIterator[str], on_end: Callable[[], None],
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_end = on_end

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_end()


async def _first(waiting: Awaitable[T], ended: asyncio.Event) -> T | None:
    """What `waiting` gives, or None as soon as `ended` is set."""
    task = asyncio.ensure_future(waiting)
    stop = asyncio.ensure_future(ended.wait())
    try:
        await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not task.done():
        task.cancel()
        return None
    return task.result()


@router.get("/events")
async def events(request: Request, user: CurrentUser, web: Web) -> StreamingResponse:
    if web.streams.count(user.id) >= MAX_STREAMS:
        raise HTTPException(429)
    ended = web.streams.open(user.id, user.session.id)
    async def stream() -> AsyncIterator[str]:
        subscription = await web.changes.subscribe(user.id)
        try:
            async for chunk in changes(subscription):
                yield chunk
        finally:
            if subscription is not None:
                subscription.close()

    async def changes(subscription: AsyncSubscription | None) -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        last = await web.changes.folder_state(user.id)
        quiet = 0.0
        lived = 0.0
        unchecked = 0.0
        while lived < MAX_STREAM:
            if await request.is_disconnected():
                return
            changed = await _first(
                web.changes.wait_for_change(user.id, last, POLL, subscription), ended)
            lived += POLL
            unchecked += POLL
            if changed is not None or unchecked >= SESSION_CHECK:  # before any news, too
                unchecked = 0.0
                if not ended.is_set() and await web.load_session_by_id(user.session.id) is None:
                    ended.set()
            if ended.is_set():
                yield "event: logout\ndata: {}\n\n"
                return
            if changed is None:
                quiet += POLL
                if quiet >= KEEPALIVE:
                    quiet = 0.0
                    yield ": keepalive\n\n"
                continue
            last = changed
            quiet = 0.0
            tree = await web.folder_tree(user.id)
            payload = {
                "folders": {str(f.id): {"unseen": f.unseen_count, "count": f.message_count}
                            for f in tree},
                "inbox_unseen": next((f.unseen_count for f in tree if f.name == "INBOX"), 0),
            }
            yield f"event: folders\ndata: {json.dumps(payload)}\n\n"

    return _CountedStream(stream(), lambda: web.streams.close(user.id, user.session.id, ended),
                          media_type="text/event-stream",
                          headers={"cache-control": "no-store", "x-accel-buffering": "no"})
