"""Walking a route: which host to talk to, and what to do when one fails.

`deliver_over_route` tries the route's hosts in order (the next one on a
connection failure or a refused greeting), reconnects when a server drops
the line between messages, and hands every message's per-recipient
outcomes to a callback as soon as they are known.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from nmail.dns.errors import DnsLookupError
from nmail.dns.resolver import MailResolver
from nmail.queue.outcomes import (
    PERMANENT,
    TEMPORARY,
    HostUnusable,
    Outcome,
    Outgoing,
    SessionLost,
)
from nmail.queue.routing import TLS_OPPORTUNISTIC, Route
from nmail.queue.session_cache import SessionCache
from nmail.queue.smtp_client import RemoteSession, TlsContexts

Recorder = Callable[[Outgoing, list[Outcome]], Awaitable[None]]


async def deliver_over_route(
    route: Route,
    items: Sequence[Outgoing],
    record: Recorder,
    *,
    resolver: MailResolver,
    local_hostname: str,
    tls: TlsContexts,
    still_wanted: Callable[[Outgoing], bool] | None = None,
    cache: SessionCache | None = None,
    make_room: Callable[[], Awaitable[None]] | None = None,
    park_limit: int = 1,
) -> None:
    """Send `items` over one connection at a time to the route's hosts, in order.

    `record(item, outcomes)` is awaited after each message, before the next;
    items for which `still_wanted` says False are skipped (lease lost). With
    a `cache`, a session parked for the route's destination is used first and
    the session is parked again at the end (up to `park_limit` per
    destination); `make_room()` is awaited before connecting anew.
    """
    destination = route.destination
    session = cache.take(destination) if cache is not None else None
    reused = session is not None
    failed_hosts: set[str] = set()
    pending = list(items)
    try:
        while pending:
            if session is None or not session.alive:
                if make_room is not None:
                    await make_room()
                session, failure = await _connect(
                    route, failed_hosts, resolver, local_hostname, tls
                )
                reused = False
                if session is None:
                    for item in pending:
                        if still_wanted is None or still_wanted(item):
                            await record(item, [failure] * len(item.recipients))
                    return
            item = pending.pop(0)
            if still_wanted is not None and not still_wanted(item):
                continue
            try:
                outcomes = await session.send(item)
            except SessionLost as exc:
                host, session = session.host, None
                if reused and not exc.body_sent:
                    # A parked session the server had closed meanwhile: the
                    # message never left, send it again on a new connection.
                    pending.insert(0, item)
                    continue
                # The message may or may not have arrived; it is retried (a
                # duplicate is possible, a loss is not).
                lost = Outcome(TEMPORARY, f"4.4.2 {exc}", "4.4.2", host)
                outcomes = [lost] * len(item.recipients)
            reused = False
            await record(item, outcomes)
    finally:
        if session is not None:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                session.abort()  # being cancelled: no polite QUIT, just hang up
            elif cache is None or not cache.park(destination, session, park_limit):
                await session.close()


async def _connect(
    route: Route,
    failed_hosts: set[str],
    resolver: MailResolver,
    local_hostname: str,
    tls: TlsContexts,
) -> tuple[RemoteSession | None, Outcome]:
    """The first host that takes a session; otherwise the outcome to record."""
    errors: list[str] = []
    all_permanent = True
    last_host: str | None = None
    for host in route.hosts:
        if host in failed_hosts:
            continue
        last_host = host
        try:
            addresses = await resolver.addresses(host)
        except DnsLookupError as exc:
            errors.append(str(exc))
            all_permanent = all_permanent and exc.permanent
            failed_hosts.add(host)
            continue
        for address in addresses:
            try:
                return await _open_with_fallback(route, host, address, local_hostname, tls), _NONE
            except HostUnusable as exc:
                errors.append(str(exc))
                all_permanent = False
        failed_hosts.add(host)
    if not errors:
        errors.append("no usable mail host left for this destination")
        all_permanent = False
    reason = errors[-1] if len(errors) == 1 else "; ".join(errors[-3:])
    if all_permanent:
        return None, Outcome(PERMANENT, f"5.4.4 {reason}", "5.4.4", last_host)
    return None, Outcome(TEMPORARY, f"4.4.1 {reason}", "4.4.1", last_host)


async def _open_with_fallback(
    route: Route, host: str, address: str, local_hostname: str, tls: TlsContexts
) -> RemoteSession:
    try:
        return await RemoteSession.open(route, host, address, local_hostname, tls)
    except HostUnusable as exc:
        # Opportunistic TLS that failed to negotiate: like Postfix at
        # security level "may", try once more in plaintext.
        if not exc.tls_failed or route.tls != TLS_OPPORTUNISTIC or route.verify:
            raise
    return await RemoteSession.open(route, host, address, local_hostname, tls, try_tls=False)


_NONE = Outcome(TEMPORARY, "", "4.0.0", None)
