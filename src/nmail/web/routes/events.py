"""GET /events: Server-Sent Events telling an open mailbox page that folders changed.

The page re-reads its list when told (mailbox.js), so new mail shows up
without a reload and the tab title keeps the unread count. Until the change
feed is available to the web process, the stream looks at the account's
folder MODSEQs (one small indexed SELECT) every POLL seconds and speaks only
when one moved; with the feed it wakes on the feed instead (facade.changes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from nmail.web.deps import CurrentUser, Web

router = APIRouter()
POLL = 1.0
KEEPALIVE = 25.0
MAX_STREAM = 3600.0  # the browser reconnects by itself; a session revoked meanwhile ends it


@router.get("/events")
async def events(request: Request, user: CurrentUser, web: Web) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        last = await web.folder_state(user.id)
        quiet = 0.0
        lived = 0.0
        while lived < MAX_STREAM:
            if await request.is_disconnected():
                return
            changed = await web.wait_for_change(user.id, last, POLL)
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
                "folders": {str(c.info.id): {"unseen": c.unseen, "count": c.info.message_count}
                            for c in tree},
                "inbox_unseen": next((c.unseen for c in tree if c.info.name == "INBOX"), 0),
            }
            yield f"event: folders\ndata: {json.dumps(payload)}\n\n"
        await asyncio.sleep(0)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})
