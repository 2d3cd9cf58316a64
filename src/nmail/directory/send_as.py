"""Send-as grants: addresses (or @domain) an admin lets an account use in From:.

An authenticated user may put in MAIL FROM, From: and Sender: only what
the directory says is theirs: their address, the aliases that deliver to
them (sender_addresses.py) and these grants. A grant is how a shared
address (`info@`, `sales@`) or a whole domain (`@example.com`, for an
application account) is handed to someone without making it an alias.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from nmail.db.tables import send_as
from nmail.directory.accounts import AccountsMixin
from nmail.directory.errors import Conflict, NotFound
from nmail.directory.names import normalize_sender_pattern


class SendAsMixin(AccountsMixin):
    """Admin-granted sender addresses."""

    def add_send_as(self, login: str, address: str) -> str:
        """Let the account at `login` send as `address` (an address or @domain)."""
        grant = normalize_sender_pattern(address)
        with self._transaction(f"{grant} is already granted") as conn:
            account = self._require_account(conn, login)
            exists = conn.execute(
                select(send_as.c.id).where(
                    send_as.c.account_id == account.id, send_as.c.address == grant
                )
            ).first()
            if exists is not None:
                raise Conflict(f"{account.address} may already send as {grant}")
            conn.execute(
                insert(send_as).values(account_id=account.id, address=grant, created_at=self._now())
            )
        return grant

    def delete_send_as(self, login: str, address: str) -> None:
        """Withdraw a send-as grant."""
        grant = normalize_sender_pattern(address)
        with self._transaction("the send-as grants changed meanwhile") as conn:
            account = self._require_account(conn, login)
            gone = conn.execute(
                delete(send_as).where(
                    send_as.c.account_id == account.id, send_as.c.address == grant
                )
            ).rowcount
            if gone == 0:
                raise NotFound(f"{account.address} has no send-as grant for {grant}")

    def list_send_as(self, login: str) -> list[str]:
        """The account's send-as grants, sorted."""
        with self._engine.connect() as conn:
            account = self._require_account(conn, login)
            return sorted(
                str(value)
                for value in conn.execute(
                    select(send_as.c.address).where(send_as.c.account_id == account.id)
                ).scalars()
            )
