"""What every SMTP session of one listener shares (smtp.SmtpServer makes it)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from nmail.protocols.smtp import SmtpOptions
from nmail.protocols.smtp.data import BodySpill
from nmail.servers.delays import Sleep
from nmail.servers.smtp_backend import InlineChecks, SmtpBackend


@dataclass(frozen=True, slots=True)
class SessionSetup:
    """What every session of one listener shares."""

    options: SmtpOptions
    backend: SmtpBackend
    inline: InlineChecks | None  # the backend's answers from memory, if it offers them
    executor: Executor | None
    tls_context: Callable[[], ssl.SSLContext | None]
    implicit_tls: bool  # the listener wraps connections in TLS before connection_made
    plaintext_auth_allowed: Callable[[str], bool]
    idle_timeout: float
    min_data_rate: float  # bytes/s: what a received byte adds to the idle deadline
    max_session_time: float
    handshake_timeout: float
    stopping: asyncio.Event  # set when the listener closes: login delays end at once
    spill: Callable[[], BodySpill] | None = None  # where large messages wait (data_spool)
    # How a guessing client's RCPT delay and a failed AUTH's are waited (tests
    # pass a recorder, or a gate they open).
    sleep: Sleep = asyncio.sleep
