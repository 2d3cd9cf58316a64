"""Hosted domains, domain aliases and catch-all addresses."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, update

from nmail.db.tables import accounts, domain_aliases, domains
from nmail.directory.base import DirectoryBase, inserted_id
from nmail.directory.errors import Conflict, InvalidName, NotFound
from nmail.directory.model import Account, Domain, DomainAlias
from nmail.directory.names import normalize_address, normalize_domain, split_address
from nmail.directory.queries import (
    account_from_row,
    account_select,
    alias_targets,
    domain_alias_target,
    domain_row,
    find_account,
    hosted_domain,
    lock_mail_folders,
    require_domain,
)
from nmail.directory.server_admins import keep_a_server_admin


class DomainsMixin(DirectoryBase):
    """Domains the server receives mail for."""

    def add_domain(self, name: str) -> Domain:
        """Host a new domain; Conflict when it (or a domain alias of that name) exists."""
        domain = normalize_domain(name)
        with self._transaction(f"domain {domain} already exists") as conn:
            if domain_row(conn, domain) is not None:
                raise Conflict(f"domain {domain} already exists")
            real = domain_alias_target(conn, domain)
            if real is not None:
                raise Conflict(f"{domain} is already an alias of {real.name}")
            result = conn.execute(
                insert(domains).values(name=domain, catchall=None, created_at=self._now())
            )
            new_id = inserted_id(result)
        return Domain(new_id, domain, None)

    def get_domain(self, name: str) -> Domain | None:
        """The hosted domain `name` (exact, not through domain aliases), or None."""
        try:
            domain = normalize_domain(name)
        except InvalidName:
            return None
        with self._engine.connect() as conn:
            row = domain_row(conn, domain)
        return None if row is None else Domain(row.id, row.name, row.catchall)

    def list_domains(self) -> list[Domain]:
        """Every hosted domain, by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(domains.c.id, domains.c.name, domains.c.catchall).order_by(domains.c.name)
            )
            return [Domain(int(r.id), str(r.name), r.catchall) for r in rows]

    def account_counts(self) -> dict[str, int]:
        """Number of accounts per hosted domain name."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(domains.c.name, func.count(accounts.c.id))
                .select_from(domains.outerjoin(accounts, accounts.c.domain_id == domains.c.id))
                .group_by(domains.c.name)
            )
            return {str(r[0]): int(r[1]) for r in rows}

    def delete_domain(self, name: str, *, force: bool = False) -> list[Account]:
        """Stop hosting a domain; returns the accounts deleted with it.

        Refused while it has accounts unless `force`, and (LastServerAdmin) while
        it holds the last server administrator, or the last who can log in. Its
        aliases, domain aliases and accounts go with it; mail files are left on disk.
        """
        domain = normalize_domain(name)
        with self._transaction(f"domain {domain} changed while deleting it") as conn:
            row = require_domain(conn, domain)
            doomed = [
                account_from_row(r)
                for r in conn.execute(
                    account_select()
                    .where(accounts.c.domain_id == row.id)
                    .order_by(accounts.c.userid)
                )
            ]
            if doomed and not force:
                raise Conflict(
                    f"domain {domain} still has {len(doomed)} account(s);"
                    " delete them first, or force the deletion (--force)"
                )
            # Not the domain of the last server administrator (server_admins.py).
            keep_a_server_admin(conn, losing_role=[a.id for a in doomed], domain=domain)
            # ON DELETE CASCADE removes accounts, aliases, domain aliases, keys, folders:
            # the folder rows locked first, the writers' order (lock_mail_folders).
            lock_mail_folders(conn, domain_id=row.id)
            conn.execute(delete(domains).where(domains.c.id == row.id))
        return doomed

    def is_hosted(self, domain: str) -> bool:
        """Whether mail for `domain` (a hosted domain or a domain alias) is ours."""
        try:
            name = normalize_domain(domain, require_dot=False)
        except InvalidName:
            return False
        with self._engine.connect() as conn:
            return hosted_domain(conn, name) is not None

    def add_domain_alias(self, alias: str, real: str) -> DomainAlias:
        """Make mail for `alias` go to the same users in the hosted domain `real`."""
        alias_name = normalize_domain(alias)
        real_name = normalize_domain(real)
        if alias_name == real_name:
            raise Conflict(f"a domain cannot be an alias of itself ({alias_name})")
        with self._transaction(f"{alias_name} is already a domain alias") as conn:
            if domain_row(conn, alias_name) is not None:
                raise Conflict(f"{alias_name} is a hosted domain; it cannot also be an alias")
            existing = domain_alias_target(conn, alias_name)
            if existing is not None:
                raise Conflict(f"{alias_name} is already an alias of {existing.name}")
            target = require_domain(conn, real_name)
            conn.execute(insert(domain_aliases).values(name=alias_name, domain_id=target.id))
        return DomainAlias(alias_name, target.name)

    def delete_domain_alias(self, alias: str) -> None:
        """Stop receiving mail for domain alias `alias`."""
        alias_name = normalize_domain(alias)
        with self._transaction(f"domain alias {alias_name} changed meanwhile") as conn:
            result = conn.execute(delete(domain_aliases).where(domain_aliases.c.name == alias_name))
            if result.rowcount == 0:
                raise NotFound(f"no such domain alias: {alias_name}")

    def list_domain_aliases(self) -> list[DomainAlias]:
        """Every domain alias with the hosted domain it maps to."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(domain_aliases.c.name, domains.c.name.label("domain"))
                .select_from(
                    domain_aliases.join(domains, domain_aliases.c.domain_id == domains.c.id)
                )
                .order_by(domain_aliases.c.name)
            )
            return [DomainAlias(str(r.name), str(r.domain)) for r in rows]

    def set_catchall(self, domain: str, target: str) -> Domain:
        """Send mail for unknown local parts of `domain` to `target`.

        `target` is a full address, or a bare local part meaning one in
        `domain`. A local target must be an existing account or alias.
        """
        name = normalize_domain(domain)
        raw_target = target if "@" in target else f"{target}@{name}"
        address = normalize_address(raw_target, require_dot=True)
        with self._transaction(f"domain {name} changed meanwhile") as conn:
            row = require_domain(conn, name)
            local, target_domain = split_address(address)
            hosted = hosted_domain(conn, target_domain)
            if hosted is not None and (
                find_account(conn, hosted.id, local) is None
                and not alias_targets(conn, hosted.id, local)
            ):
                raise NotFound(f"catch-all target {address}: no such account or alias")
            conn.execute(update(domains).where(domains.c.id == row.id).values(catchall=address))
        return Domain(row.id, row.name, address)

    def clear_catchall(self, domain: str) -> Domain:
        """Refuse mail for unknown local parts of `domain` again."""
        name = normalize_domain(domain)
        with self._transaction(f"domain {name} changed meanwhile") as conn:
            row = require_domain(conn, name)
            conn.execute(update(domains).where(domains.c.id == row.id).values(catchall=None))
        return Domain(row.id, row.name, None)
