"""The envelope of one message as it enters delivery, whatever door it came by."""

from __future__ import annotations

from dataclasses import dataclass, field

from nmail.directory.model import Resolution
from nmail.quick_init import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who handed us the message (for Received: and the logs)."""

    ip: str = "127.0.0.1"
    helo: str = ""
    # "ESMTP", "ESMTPS", "ESMTPSA", "ESMTPA", "SMTP", "HTTP" (webmail), "LOCAL" (bounces)
    protocol: str = "ESMTP"
    auth_user: str | None = None
    # The id of the account that logged in: an address deleted and created
    # again is another account, which an open session must not speak for.
    auth_account_id: int | None = None
    tls: str | None = None  # e.g. "TLSv1.3:TLS_AES_256_GCM_SHA384"


@quick_init
@dataclass(frozen=True, slots=True)
class Envelope:
    """MAIL FROM and the accepted RCPTs; `sender` is "" for the null sender."""

    sender: str
    recipients: tuple[Resolution, ...]
    client: ClientInfo = field(default_factory=ClientInfo)
    smtputf8: bool = False
    # RFC 3461 parameters, kept for the queue's DSNs.
    dsn_envid: str | None = None
    dsn_ret: str | None = None
    dsn_notify: tuple[str | None, ...] = ()
    dsn_orcpt: tuple[str | None, ...] = ()
    # Whether a line of the content starts with "." when the door knows (SMTP's
    # DATA, smtp MessageData.dot_lines); None: the store looks if it must.
    dot_lines: bool | None = None
