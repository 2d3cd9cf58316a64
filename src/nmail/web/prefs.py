"""Per-account webmail preferences (table `web_prefs`): language, signature, list options."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from nmail.db.web_tables import web_prefs
from nmail.web.time_zone import zone_names, zone_or_none

LANGUAGES = ("ko", "en")
PAGE_SIZES = (25, 50, 100)
MAX_SIGNATURE = 4000


@dataclass(frozen=True, slots=True)
class Prefs:
    language: str = ""  # "" = follow the browser
    signature: str = ""
    page_size: int = 50
    threads: bool = False
    time_zone: str = ""  # "" = the browser's (sent at login), then the server's


class PrefsStore:
    """Blocking; called from the web app's thread pool."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, account_id: int) -> Prefs:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(web_prefs).where(web_prefs.c.account_id == account_id)
            ).first()
        if row is None:
            return Prefs()
        return Prefs(row.language, row.signature, int(row.page_size), bool(row.threads),
                     row.time_zone or "")

    def update(self, account_id: int, **changes: object) -> Prefs:
        """Change some fields; ValueError when a value is not allowed."""
        prefs = replace(self.get(account_id), **changes)  # type: ignore[arg-type]
        if prefs.language not in ("", *LANGUAGES):
            raise ValueError("language")
        if prefs.page_size not in PAGE_SIZES:
            raise ValueError("page_size")
        if len(prefs.signature) > MAX_SIGNATURE:
            raise ValueError("signature")
        if prefs.time_zone and (prefs.time_zone not in zone_names()
                                or zone_or_none(prefs.time_zone) is None):
            raise ValueError("time_zone")
        values = {
            "language": prefs.language, "signature": prefs.signature,
            "page_size": prefs.page_size, "threads": prefs.threads,
            "time_zone": prefs.time_zone,
        }
        # Only the fields changed: two requests at once (the view toggle and the
        # settings form) each keep theirs. The first save of an account inserts
        # the row in a savepoint: a request beside it waits for that row, finds
        # it taken and updates it, not a duplicate-key error
        # (tests/test_lock_order.py).
        changed = {key: values[key] for key in changes if key in values}
        mine = web_prefs.c.account_id == account_id
        with self._engine.begin() as conn:
            if changed and conn.execute(update(web_prefs).where(mine).values(**changed)).rowcount:
                return prefs
            try:
                with conn.begin_nested():
                    conn.execute(insert(web_prefs).values(account_id=account_id, **values))
            except IntegrityError:
                if changed:
                    conn.execute(update(web_prefs).where(mine).values(**changed))
        return prefs
