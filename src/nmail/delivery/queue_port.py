"""What the intake needs of the outbound queue (queue/outbound.py provides it).

A Protocol rather than an import: delivery sits above the queue and must
run without one (a node that only stores mail), and tests hand in fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from nmail.delivery.envelope import ClientInfo
from nmail.message_source import MessageSource


class Queue(Protocol):
    """What the intake needs of the outbound queue."""

    def enqueue(
        self,
        sender: str,
        recipients: Sequence[str],
        content: MessageSource,
        *,
        client: ClientInfo | None = None,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        notify: Sequence[str | None] | None = None,
        orcpt: Sequence[str | None] | None = None,
        is_bounce: bool = False,
        sign_domain: str | None = None,
    ) -> str: ...

    def check_envelope(
        self,
        sender: str,
        recipients: Sequence[str],
        *,
        client: ClientInfo | None = None,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        notify: Sequence[str | None] | None = None,
        orcpt: Sequence[str | None] | None = None,
    ) -> Any: ...
