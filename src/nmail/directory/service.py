"""The Directory: one object for domains, accounts, aliases, relay networks and logins."""

from __future__ import annotations

from nmail.directory.aliases import AliasesMixin
from nmail.directory.domains import DomainsMixin
from nmail.directory.rejects import RejectsMixin
from nmail.directory.relay import RelayMixin
from nmail.directory.resolver import ResolverMixin
from nmail.directory.send_as import SendAsMixin
from nmail.directory.sender_addresses import SenderAddressesMixin


class Directory(
    DomainsMixin, RejectsMixin, SendAsMixin, AliasesMixin, RelayMixin, ResolverMixin,
    SenderAddressesMixin,
):
    """Who and what the server hosts, over SQL.

    `Directory(engine, clock=time.time, passwords=None)`. Synchronous and
    thread-safe: every call takes its own connection from the engine's pool
    and holds no other state. Every change is one transaction; bad input
    raises a DirectoryError subclass and changes nothing. Asyncio servers
    call it through an executor.
    """
