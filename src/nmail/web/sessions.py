"""Server-side webmail sessions in SQL (table `web_sessions`).

The cookie holds 32 random bytes; the table holds their SHA-256, the
account, the CSRF token and two times. Sessions are revocable (delete the
row: logout, password change, or the admin), die after `session_idle` without
use and `session_max` in all, and only a login makes one, always a new one,
so a planted session id is worth nothing. The login form needs no row: its
CSRF token is signed and bound to a cookie (web/login_tokens.py); rows with
no account are what older versions made before login, still honoured and
swept. `last_seen` is written at most once a minute per session, so reading
a page costs one primary-key SELECT. Expired rows are also swept by
`create`, at most once every SWEEP_EVERY seconds: rows never presented again
would otherwise pile up for ever. An account keeps at most
MAX_PER_ACCOUNT sessions: a login past that ends the least recently used
ones, since a script with one good password could otherwise add a row per
login (no throttle counts successes) until idle expiry caught up.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, delete, insert, or_, select, update

from nmail.db.web_tables import web_prefs, web_sessions

TOUCH_EVERY = 60
SWEEP_EVERY = 60
ANONYMOUS_IDLE = 3600
MAX_PER_ACCOUNT = 50  # browsers and devices of one person, with room to spare


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    id: str  # the stored hash, never the cookie value
    account_id: int | None
    csrf: str
    created_at: int
    last_seen: int
    # The account's list settings, read with the session (one query per page).
    language: str = ""
    page_size: int = 50
    threads: bool = False
    # The user's zone setting, else the browser's from the login form ("": the server's).
    time_zone: str = ""
    browser_zone: str = ""  # the browser's alone (the settings page names it)


# Every request runs it: built once (building and keying it anew cost ~70 µs a request).
_LOAD = (
    select(web_sessions, web_prefs.c.language, web_prefs.c.page_size, web_prefs.c.threads,
           web_prefs.c.time_zone.label("chosen_zone"))
    .select_from(web_sessions.outerjoin(
        web_prefs, web_prefs.c.account_id == web_sessions.c.account_id))
    .where(web_sessions.c.id == bindparam("key"))
)


class SessionStore:
    """Blocking; the web app calls it from its thread pool."""

    def __init__(self, engine: Engine, clock: Callable[[], float],
                 idle: int, longest: int) -> None:
        self._engine = engine
        self._clock = clock
        self._idle = idle
        self._max = longest
        self._swept_at = float("-inf")

    def create(self, account_id: int | None, client_ip: str,
               time_zone: str = "") -> tuple[str, Session]:
        """A new session; returns the cookie token and the row. `time_zone`: the
        browser's, already checked (web/time_zone.py)."""
        token = secrets.token_urlsafe(32)
        now = int(self._clock())
        if now - self._swept_at >= SWEEP_EVERY:
            self._swept_at = now
            self.sweep()
        session = Session(token_hash(token), account_id, secrets.token_urlsafe(32), now, now,
                          time_zone=time_zone[:64], browser_zone=time_zone[:64])
        with self._engine.begin() as conn:
            conn.execute(
                insert(web_sessions).values(
                    id=session.id, account_id=account_id, csrf=session.csrf,
                    created_at=now, last_seen=now, client_ip=client_ip[:64],
                    time_zone=time_zone[:64],
                )
            )
        if account_id is not None:
            # The oldest beyond MAX_PER_ACCOUNT go in a transaction of their own,
            # after the new row's COMMIT: holding that row while deleting them
            # deadlocked on MariaDB with the sweep of expired sessions, which waits
            # for the uncommitted row while holding the expired ones
            # (docs/ARCHITECTURE.md "Lock order", tests/test_lock_order.py).
            with self._engine.begin() as conn:
                # Two statements: MariaDB refuses LIMIT inside an IN subquery.
                surplus = conn.execute(
                    select(web_sessions.c.id).where(web_sessions.c.account_id == account_id)
                    .order_by(web_sessions.c.last_seen.desc(), web_sessions.c.created_at.desc())
                    .offset(MAX_PER_ACCOUNT)).scalars().all()
                surplus = [key for key in surplus if key != session.id]
                if surplus:
                    conn.execute(delete(web_sessions).where(web_sessions.c.id.in_(surplus)))
        return token, session

    def load(self, token: str, touch: bool = True) -> Session | None:
        """The live session of a cookie token, or None (expired ones are deleted).
        `touch=False`: its idle clock is left alone (a request another site caused)."""
        if not token or len(token) > 128:
            return None
        key = token_hash(token)
        with self._engine.connect() as conn:
            row = conn.execute(_LOAD, {"key": key}).first()
        if row is None:
            return None
        now = int(self._clock())
        idle = self._idle if row.account_id is not None else min(self._idle, ANONYMOUS_IDLE)
        if now - int(row.last_seen) > idle or now - int(row.created_at) > self._max:
            self.delete(key)
            return None
        session = Session(key, row.account_id, row.csrf, int(row.created_at),
                          int(row.last_seen), row.language or "", int(row.page_size or 50),
                          bool(row.threads), row.chosen_zone or row.time_zone or "",
                          row.time_zone or "")
        if touch and now - session.last_seen >= TOUCH_EVERY:
            with self._engine.begin() as conn:
                conn.execute(
                    update(web_sessions).where(web_sessions.c.id == key).values(last_seen=now)
                )
        return session

    def delete(self, session_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.id == session_id))

    def delete_account_sessions(self, account_id: int, keep: str | None = None) -> int:
        """Revoke every session of an account (all but `keep`): after a password change."""
        condition = web_sessions.c.account_id == account_id
        if keep is not None:
            condition = condition & (web_sessions.c.id != keep)
        with self._engine.begin() as conn:
            return int(conn.execute(delete(web_sessions).where(condition)).rowcount or 0)

    def sweep(self) -> int:
        """Delete every expired session; returns how many."""
        now = int(self._clock())
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(web_sessions).where(
                    or_(
                        web_sessions.c.last_seen < now - self._idle,
                        web_sessions.c.created_at < now - self._max,
                        (web_sessions.c.account_id.is_(None))
                        & (web_sessions.c.last_seen < now - ANONYMOUS_IDLE),
                    )
                )
            )
            return int(result.rowcount or 0)
