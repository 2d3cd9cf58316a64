"""DATA for the queue's SMTP client: the body as it goes on the wire, sent once.

aiosmtplib's DATA runs two regular-expression passes over every message
(line endings, then dot-stuffing), which cost more CPU than the rest of a
delivery. The queue's bodies have CRLF line endings already (normalised at
enqueue, so the DKIM signature covers the bytes sent): `wire_body` checks
that with two byte counts and dot-stuffs with one replace, and only a body
that is not clean goes through the full normalisation. Either way a bare
CR or LF never reaches the wire (no SMTP smuggling) and a line "." inside
the body is sent as "..".

`send_data` writes through the client's protocol object when it has the
shape this module knows (aiosmtplib 3 to 5); with any other version it
falls back to aiosmtplib's own `data()`, which normalises and dot-stuffs
by itself.
"""

from __future__ import annotations

from typing import Any

import aiosmtplib

from nmail.queue.content import normalize_line_endings


def clean_lines(body: bytes) -> bytes:
    """`body` with CRLF line endings only, ending in CRLF (a copy only when needed)."""
    crlf = body.count(b"\r\n")
    if body.count(b"\r") != crlf or body.count(b"\n") != crlf or not body.endswith(b"\r\n"):
        return normalize_line_endings(body)
    return body


def wire_body(body: bytes) -> bytes:
    """What follows DATA's 354: the body dot-stuffed, then the terminating ".\\r\\n"."""
    clean = clean_lines(body)
    stuffed = clean.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


async def send_data(smtp: aiosmtplib.SMTP, body: bytes, reply_timeout: float) -> Any:
    """DATA, the body, and the final reply; raises SMTPDataError on a refusal."""
    protocol: Any = smtp.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    lock = getattr(protocol, "_command_lock", None)
    if lock is None or not hasattr(protocol, "read_response"):
        # A version of aiosmtplib we do not know inside: let it do all the work.
        return await smtp.data(clean_lines(body), timeout=reply_timeout)
    payload = wire_body(body)
    try:
        async with lock:
            _expect_reply(protocol)
            protocol.write(b"DATA\r\n")
            start = await protocol.read_response(timeout=reply_timeout)
            if start.code != 354:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            _expect_reply(protocol)
            protocol.write(payload)
            reply = await protocol.read_response(timeout=reply_timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()
        raise
    if reply.code != 250:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)
    return reply


def _expect_reply(protocol: Any) -> None:
    # aiosmtplib 5 treats data that arrives with no reply expected as unsolicited.
    if hasattr(protocol, "_response_pending"):
        protocol._response_pending = True
