"""resolve(address): what a recipient address means, on the hot path of every RCPT.

Order: domain aliases are mapped, then an account matches, else the alias
is expanded (recursively: targets may be accounts, aliases or external
addresses), else the domain's catch-all, else the address is unknown. Each
step is one indexed query; nothing is scanned. `server_admins()` (who gets
postmaster mail for the host name) reads the accounts unindexed, and
`domain_admins()` (a hosted domain's postmaster without an address of its
own) one domain's: callers ask them through DirectoryCache, once per
directory generation.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from nmail.db.tables import accounts, domains
from nmail.directory.base import DirectoryBase
from nmail.directory.errors import InvalidName
from nmail.directory.model import Account, Resolution
from nmail.directory.names import is_userid, normalize_address, split_address
from nmail.directory.queries import (
    DomainRow,
    account_from_row,
    account_select,
    alias_targets,
    find_account,
    hosted_domain,
)

log = logging.getLogger(__name__)

# Alias chains deeper than this are cut: a real setup never needs it and a
# runaway chain must not cost unbounded queries per RCPT.
MAX_DEPTH = 10


class _Expansion:
    """One resolution: the addresses seen so far and what they led to."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.accounts: dict[int, Account] = {}
        self.remote: dict[str, None] = {}  # an ordered set
        self._seen: set[str] = set()
        self._domains: dict[str, DomainRow | None] = {}

    def domain(self, name: str) -> DomainRow | None:
        if name not in self._domains:
            self._domains[name] = hosted_domain(self.conn, name)
        return self._domains[name]

    def expand(self, address: str, depth: int) -> None:
        local, domain_name = split_address(address)
        row = self.domain(domain_name)
        if row is None:
            self.remote[address] = None
            return
        canonical = f"{local}@{row.name}"
        if canonical in self._seen:
            return  # a loop, or two paths to one address: deliver once
        self._seen.add(canonical)
        if is_userid(local):
            account = find_account(self.conn, row.id, local)
            if account is not None:
                self.accounts.setdefault(account.id, account)
                return
        # Alias names are ASCII. Skipping the lookup for anything else also keeps
        # MariaDB's accent-insensitive collation from matching "é" to "e".
        targets = alias_targets(self.conn, row.id, local) if local.isascii() else []
        followed = targets or ([row.catchall] if row.catchall else [])
        if not followed:
            return
        if depth >= MAX_DEPTH:
            log.warning("alias chain deeper than %d at %s; rest ignored", MAX_DEPTH, canonical)
            return
        for target in followed:
            try:
                self.expand(normalize_address(target), depth + 1)
            except InvalidName:
                # Stored targets were validated; one broken by hand is skipped, not fatal.
                log.warning("bad alias target %r for %s ignored", target, canonical)


class ResolverMixin(DirectoryBase):
    """Recipient resolution."""

    def resolve(self, address: str) -> Resolution:
        """What `address` delivers to; raises InvalidName when it is not an address.

        Accounts whose receiving is disabled are still returned: the policy
        decides on the 550 reply.
        """
        normal = normalize_address(address)
        domain_name = split_address(normal)[1]
        with self._engine.connect() as conn:
            expansion = _Expansion(conn)
            if expansion.domain(domain_name) is None:
                return Resolution(normal, hosted=False, remote=(normal,))
            expansion.expand(normal, 0)
        return Resolution(
            normal,
            hosted=True,
            accounts=tuple(expansion.accounts.values()),
            remote=tuple(expansion.remote),
        )

    def server_admins(self) -> tuple[Account, ...]:
        """The server administrators' accounts (is_server_admin), by address: who
        receives postmaster mail for the host name (policy/postmaster.py)."""
        query = (
            account_select()
            .where(accounts.c.is_server_admin.is_(True))
            .order_by(domains.c.name, accounts.c.userid)
        )
        with self._engine.connect() as conn:
            return tuple(account_from_row(row) for row in conn.execute(query))

    def domain_admins(self, domain: str) -> tuple[Account, ...]:
        """The administrators (is_admin) of the hosted domain `domain` names (a
        domain alias means its domain; normal form), by user id; () when it is
        not hosted. Who receives its postmaster mail (policy/postmaster.py)."""
        with self._engine.connect() as conn:
            row = hosted_domain(conn, domain)
            if row is None:
                return ()
            query = (
                account_select()
                .where(accounts.c.domain_id == row.id, accounts.c.is_admin.is_(True))
                .order_by(accounts.c.userid)
            )
            return tuple(account_from_row(r) for r in conn.execute(query))
