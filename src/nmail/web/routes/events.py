"""GET /events: Server-Sent Events telling an open mailbox page that folders changed.

The page re-reads its list when told (mailbox.js), so new mail shows up
without a reload and the tab title keeps the unread count. The stream wakes
on the change feed (mailstore/feed.py) and then compares the account's
folder MODSEQs (one small indexed SELECT): it speaks only when one moved.
It also looks every POLL seconds, so a lost feed event or a node without a
hub only delays the news.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from nmail.mailstore.feed import AsyncSubscription
from nmail.web.deps import CurrentUser, Web

router = APIRouter()
POLL = 2.0
KEEPALIVE = 25.0
MAX_STREAM = 3600.0  # the browser reconnects by itself; a session revoked meanwhile ends it


@router.get("/events")
async def events(request: Request, user: CurrentUser, web: Web) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        subscription = await web.subscribe(user.id)
        try:
            async for chunk in changes(subscription):
                yield chunk
        finally:
            if subscription is not None:
                subscription.close()

    async def changes(subscription: AsyncSubscription | None) -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        last = await web.folder_state(user.id)
        quiet = 0.0
        lived = 0.0
        while lived < MAX_STREAM:
            if await request.is_disconnected():
                return
            changed = await web.wait_for_change(user.id, last, POLL, subscription)
            lived += POLL
            if changed is None:
                quiet += POLL
                if quiet >= KEEPALIVE:
                    quiet = 0.0
                    yield ": keepalive\n\n"
                continue
            last = changed
            quiet = 0.0
            if await web.load_session_by_id(user.session.id) is None:
                yield "event: logout\ndata: {}\n\n"
                return
            tree = await web.folder_tree(user.id)
            payload = {
                "folders": {str(f.id): {"unseen": f.unseen_count, "count": f.message_count}
                            for f in tree},
                "inbox_unseen": next((f.unseen_count for f in tree if f.name == "INBOX"), 0),
            }
            yield f"event: folders\ndata: {json.dumps(payload)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})
