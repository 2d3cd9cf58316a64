"""The server side of STARTTLS (SMTP) and STLS (POP3): one handshake helper.

Both sessions stop reading before they answer "go ahead", hand the
transport to the loop's TLS layer, and carry on with the transport it
returns. A failed handshake is the client's problem, not ours: it is
logged at info level and the caller hangs up.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

log = logging.getLogger("nmail.tls")


async def upgrade(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.Transport,
    protocol: asyncio.BaseProtocol,
    context: ssl.SSLContext,
    handshake_timeout: float,
    who: str,
) -> asyncio.Transport | None:
    """The TLS transport over `transport`; None when the handshake failed (`who` is logged)."""
    try:
        new = await loop.start_tls(
            transport,
            protocol,
            context,
            server_side=True,
            ssl_handshake_timeout=handshake_timeout,
        )
    except Exception as exc:  # any failed handshake just ends the session
        log.info("TLS handshake with %s failed: %s", who, exc)
        return None
    return new


def describe(transport: asyncio.BaseTransport) -> str | None:
    """"TLSv1.3:TLS_AES_256_GCM_SHA384" for a TLS transport (Received: headers, logs)."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    cipher = ssl_object.cipher()
    return f"{ssl_object.version()}:{cipher[0] if cipher else ''}"
