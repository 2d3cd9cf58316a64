"""How large a request body may be, enforced before anything reads it (the Guard).

Starlette parses a urlencoded form in memory (up to 1,000 fields of 1 MB
each) and spools multipart files to disk without any size limit, and any
visitor gets a session and its CSRF token from GET /login: a stranger could
send gigabytes to /login and fill the web process's memory or the disk.
So:
- without a logged-in session a body is a login form (or an autodiscover
  request): at most ANONYMOUS bytes;
- a logged-in user's body is at most what one message may weigh
  (`[smtp] max_message_size`, which bounds the attachments too) plus
  HEADROOM for the text fields of the compose form.
A declared Content-Length over the limit is refused at once with 413;
a chunked body is counted as it is read and cut with a 413 error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ANONYMOUS = 64 * 1024
HEADROOM = 16 * 1024 * 1024  # compose's text and HTML fields (2 M characters each)


def body_limit(logged_in: bool, max_message_size: int) -> int:
    """Bytes a request body may have."""
    return max_message_size + HEADROOM if logged_in else ANONYMOUS


def declared_too_large(content_length: str | None, limit: int) -> bool:
    """Whether a Content-Length header is unreadable or over `limit`."""
    if content_length is None:
        return False
    text = content_length.strip()
    return not text.isdigit() or int(text) > limit


def capped(receive: Receive, limit: int) -> Receive:
    """`receive` that raises 413 once the body passes `limit` bytes."""
    seen = 0

    async def receiving() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413)
        return message
    return receiving


async def refuse_too_large(send: Send, text: str) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
