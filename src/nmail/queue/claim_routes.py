"""A claim's recipients by destination: each domain routed once, in parallel.

The scheduler leases due recipients of many domains at once. Here their
domains are routed together (queue/routing.py: transport, smarthost, MX)
and the recipients grouped by the servers that take them, so that one
connection carries every message and recipient for the same destination
(two domains with the same MX hosts share it), each message's rows
together. A domain that cannot be routed gives its recipients an outcome at
once: DNS's own verdict (null MX, NXDOMAIN: permanent; SERVFAIL, a timeout:
temporary), or for any other failure a temporary 4.4.3.

Apart from scheduler.py because it only answers "where does each go?": no
leases, connections or limits, and its one link is the router.
"""

from __future__ import annotations

import asyncio
import logging

from nmail.dns.errors import DnsLookupError
from nmail.queue.outcomes import PERMANENT, TEMPORARY, Outcome
from nmail.queue.routing import Route, Router
from nmail.queue.store import Claim, RecipientInfo

log = logging.getLogger("nmail.queue")

# A destination's route, and its recipients by message id.
Group = tuple[Route, dict[str, list[RecipientInfo]]]


async def route_claim(
    router: Router, claim: Claim
) -> tuple[list[Group], list[tuple[RecipientInfo, Outcome]]]:
    """(the groups, one per destination; the recipients that could not be routed)."""
    by_domain: dict[str, list[RecipientInfo]] = {}
    for row in claim.recipients:
        by_domain.setdefault(row.domain, []).append(row)
    domains = sorted(by_domain)
    routes = await asyncio.gather(*(router.route(d) for d in domains), return_exceptions=True)
    groups: dict[tuple[object, ...], Group] = {}
    unroutable: list[tuple[RecipientInfo, Outcome]] = []
    for domain, route in zip(domains, routes, strict=True):
        if isinstance(route, DnsLookupError):
            kind = PERMANENT if route.permanent else TEMPORARY
            outcome = Outcome(kind, f"{route.status} {route}", route.status, None)
            unroutable += [(row, outcome) for row in by_domain[domain]]
            continue
        if isinstance(route, BaseException):
            log.error("queue: routing %s failed: %r", domain, route)
            outcome = Outcome(TEMPORARY, f"4.4.3 routing error: {route}", "4.4.3", None)
            unroutable += [(row, outcome) for row in by_domain[domain]]
            continue
        _, messages = groups.setdefault(route.destination, (route, {}))
        for row in by_domain[domain]:
            messages.setdefault(row.message_id, []).append(row)
    return list(groups.values()), unroutable
