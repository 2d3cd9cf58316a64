"""Aliases: an address in a hosted domain that forwards to one or more targets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select

from nmail.db.tables import aliases, domains
from nmail.directory.base import DirectoryBase
from nmail.directory.errors import Conflict, InvalidName, NotFound
from nmail.directory.model import Alias
from nmail.directory.names import (
    is_userid,
    normalize_address,
    normalize_alias_name,
    normalize_domain,
    split_address,
)
from nmail.directory.queries import (
    alias_exists,
    alias_targets,
    find_account,
    hosted_domain,
    require_domain,
)


class AliasesMixin(DirectoryBase):
    """Forwarding addresses."""

    def add_alias(self, address: str, targets: Sequence[str]) -> Alias:
        """Add targets to alias `address` (created when new); all or nothing.

        A target is a full address, or a bare local part meaning one in the
        alias's domain. Local targets must exist (an account or an alias);
        external ones are taken as given.
        """
        if not targets:
            raise InvalidName("an alias needs at least one target")
        local, domain = _split_alias_address(address)
        wanted = _normalize_targets(targets, domain)
        alias_address = f"{local}@{domain}"
        if alias_address in wanted:
            raise Conflict(f"alias {alias_address} cannot deliver to itself")
        with self._transaction(f"alias {alias_address} changed meanwhile") as conn:
            row = require_domain(conn, domain)
            if find_account(conn, row.id, local) is not None:
                raise Conflict(f"{alias_address} is an account; an alias cannot shadow it")
            present = set(alias_targets(conn, row.id, local))
            for target in wanted:
                if target in present:
                    raise Conflict(f"alias {alias_address} already delivers to {target}")
                _require_local_target(conn, target)
            for target in wanted:
                conn.execute(
                    insert(aliases).values(domain_id=row.id, local_part=local, target=target)
                )
            all_targets = alias_targets(conn, row.id, local)
        return Alias(alias_address, tuple(all_targets))

    def delete_alias(self, address: str, target: str | None = None) -> None:
        """Delete the whole alias, or only its delivery to `target`."""
        local, domain = _split_alias_address(address)
        alias_address = f"{local}@{domain}"
        with self._transaction(f"alias {alias_address} changed meanwhile") as conn:
            row = require_domain(conn, domain)
            query = delete(aliases).where(
                aliases.c.domain_id == row.id, aliases.c.local_part == local
            )
            if target is not None:
                wanted = _normalize_targets([target], domain)[0]
                query = query.where(aliases.c.target == wanted)
                if conn.execute(query).rowcount == 0:
                    raise NotFound(f"alias {alias_address} does not deliver to {wanted}")
            elif conn.execute(query).rowcount == 0:
                raise NotFound(f"no such alias: {alias_address}")

    def get_alias(self, address: str) -> Alias | None:
        """The alias at `address` with its targets, or None."""
        try:
            local, domain = _split_alias_address(address)
        except InvalidName:
            return None
        with self._engine.connect() as conn:
            row = hosted_domain(conn, domain)
            found = [] if row is None else alias_targets(conn, row.id, local)
            if row is None or not found:
                return None
            return Alias(f"{local}@{row.name}", tuple(found))

    def list_aliases(self, domain: str | None = None) -> list[Alias]:
        """Every alias, or those of one hosted domain, by address."""
        query = (
            select(aliases.c.local_part, aliases.c.target, domains.c.name)
            .select_from(aliases.join(domains, aliases.c.domain_id == domains.c.id))
            .order_by(domains.c.name, aliases.c.local_part, aliases.c.id)
        )
        grouped: dict[str, list[str]] = {}
        with self._engine.connect() as conn:
            if domain is not None:
                row = require_domain(conn, normalize_domain(domain))
                query = query.where(aliases.c.domain_id == row.id)
            for r in conn.execute(query):
                grouped.setdefault(f"{r.local_part}@{r.name}", []).append(str(r.target))
        return [Alias(address, tuple(targets)) for address, targets in grouped.items()]


def _split_alias_address(address: str) -> tuple[str, str]:
    local, domain = split_address(address)
    return normalize_alias_name(local), normalize_domain(domain)


def _normalize_targets(targets: Sequence[str], domain: str) -> list[str]:
    result: list[str] = []
    for target in targets:
        raw = target if "@" in target else f"{target}@{domain}"
        address = normalize_address(raw, require_dot=True)
        if address not in result:
            result.append(address)
    return result


def _require_local_target(conn: Connection, target: str) -> None:
    """A target in a hosted domain must name something, else mail to it would vanish."""
    local, domain = split_address(target)
    row = hosted_domain(conn, domain)
    if row is None:
        return
    if is_userid(local) and find_account(conn, row.id, local) is not None:
        return
    if alias_exists(conn, row.id, local):
        return
    raise NotFound(f"target {target}: no such account or alias")
