"""Per-account reject lists: senders (an address or @domain) whose mail is refused.

A list holds at most MAX_REJECTS entries, as the webmail's address book and its
image senders hold 5,000: the webmail's "mark as spam" offer adds ten at a post,
and nothing else bounded what a script with one session could add.
"""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select

from nmail.db.tables import reject_senders
from nmail.directory.accounts import AccountsMixin
from nmail.directory.errors import Conflict, InvalidName, NotFound
from nmail.directory.model import Account
from nmail.directory.names import normalize_address, normalize_sender_pattern, split_address

MAX_REJECTS = 5000


class RejectsMixin(AccountsMixin):
    """Senders each user refuses."""

    def add_reject(self, address: str, pattern: str) -> str:
        """Refuse mail from `pattern` (sender address or @domain) to the account."""
        normal = normalize_sender_pattern(pattern)
        with self._transaction(f"{normal} is already on the reject list") as conn:
            account = self._require_account(conn, address)
            found = conn.execute(
                select(reject_senders.c.id).where(
                    reject_senders.c.account_id == account.id,
                    reject_senders.c.pattern == normal,
                )
            ).first()
            if found is not None:
                raise Conflict(f"{normal} is already on the reject list of {account.address}")
            held = conn.execute(select(func.count()).select_from(reject_senders).where(
                reject_senders.c.account_id == account.id)).scalar_one()
            if held >= MAX_REJECTS:
                raise Conflict(f"the reject list of {account.address} is full "
                               f"({MAX_REJECTS} entries): remove one first")
            conn.execute(insert(reject_senders).values(account_id=account.id, pattern=normal))
        return normal

    def delete_reject(self, address: str, pattern: str) -> None:
        """Accept mail from `pattern` again."""
        normal = normalize_sender_pattern(pattern)
        with self._transaction("the reject list changed meanwhile") as conn:
            account = self._require_account(conn, address)
            result = conn.execute(
                delete(reject_senders).where(
                    reject_senders.c.account_id == account.id,
                    reject_senders.c.pattern == normal,
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"{normal} is not on the reject list of {account.address}")

    def list_rejects(self, address: str) -> list[str]:
        """The account's reject list, sorted."""
        with self._engine.connect() as conn:
            account = self._require_account(conn, address)
            rows = conn.execute(
                select(reject_senders.c.pattern)
                .where(reject_senders.c.account_id == account.id)
                .order_by(reject_senders.c.pattern)
            )
            return [str(r.pattern) for r in rows]

    def reject_patterns(self, account_id: int) -> frozenset[str]:
        """The reject list of the account with id `account_id` (empty if none or gone)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(reject_senders.c.pattern).where(reject_senders.c.account_id == account_id)
            )
            return frozenset(str(r.pattern) for r in rows)

    def is_rejected(self, account: Account, sender: str) -> bool:
        """Whether `account` refuses mail from envelope sender `sender`.

        The null sender (bounces) is never refused here: a user must keep
        receiving the bounces of their own mail. An unparsable sender is left
        to the sender checks.
        """
        if not sender:
            return False
        try:
            normal = normalize_address(sender)
        except InvalidName:
            return False
        domain = split_address(normal)[1]
        with self._engine.connect() as conn:
            found = conn.execute(
                select(reject_senders.c.id)
                .where(
                    reject_senders.c.account_id == account.id,
                    reject_senders.c.pattern.in_([normal, "@" + domain]),
                )
                .limit(1)
            ).first()
        return found is not None
