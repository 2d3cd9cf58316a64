"""Address completion for To/Cc/Bcc: people the user wrote to lately (and the address book).

Recent recipients come from the index rows of the user's Sent folder (the
newest few hundred, To and Cc as the index decoded them), so nothing new is
stored. The address book is the platform room's; `contacts` is handed in
when it exists. Blocking; called in the web app's thread pool.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select

from nmail.db.tables import folders, messages
from nmail.mime.addresses import parse_addresses

Contact = tuple[str, str]  # (name, address)
RECENT_ROWS = 300
MAX_RESULTS = 10


class RecentRecipients:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def recent(self, account_id: int) -> list[Contact]:
        """Distinct recipients of the newest sent messages, newest first."""
        sent = (select(folders.c.id)
                .where(folders.c.account_id == account_id, folders.c.name == "Sent")
                .scalar_subquery())
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(messages.c.to_addrs, messages.c.cc_addrs)
                .where(messages.c.folder_id == sent)
                .order_by(messages.c.date.desc(), messages.c.id.desc())
                .limit(RECENT_ROWS)
            ).all()
        seen: dict[str, Contact] = {}
        for to_addrs, cc_addrs in rows:
            for name, address in parse_addresses(f"{to_addrs or ''}, {cc_addrs or ''}"):
                key = address.lower()
                if "@" in key and key not in seen:
                    seen[key] = (name, address)
        return list(seen.values())

    def matching(self, account_id: int, text: str,
                 book: Sequence[Contact] = ()) -> list[Contact]:
        """Up to MAX_RESULTS contacts whose name or address contains `text`: the address
        book's matches (`book`, already looked up) first, then recent recipients."""
        wanted = text.strip().lower()
        if not wanted:
            return []
        found: dict[str, Contact] = {}
        for name, address in book:
            found.setdefault(address.lower(), (name, address))
        for name, address in self.recent(account_id):
            if len(found) >= MAX_RESULTS:
                break
            if wanted in address.lower() or wanted in name.lower():
                found.setdefault(address.lower(), (name, address))
        return list(found.values())[:MAX_RESULTS]
