"""A user's own delivery rules: forwarding (keeping a copy or not) and a vacation reply.

Set from the webmail's settings, applied by delivery (delivery/rules.py).
Every write bumps the directory generation in its transaction, so each
process's memory of "which accounts have rules" (RuleAccounts) is renewed at
its next delivery, exactly like the other directory answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from nmail.db.tables import mail_rules, vacation_replies
from nmail.directory.generation import GenerationReader, bump_generation

MAX_FORWARDS = 10
MAX_VACATION_BODY = 8000


@dataclass(frozen=True, slots=True)
class Vacation:
    subject: str
    body: str
    days: int  # one reply per sender per this many days
    until: int  # Unix seconds; 0 = until turned off


@dataclass(frozen=True, slots=True)
class MailRules:
    forward_to: tuple[str, ...] = ()
    keep_copy: bool = True
    vacation: Vacation | None = None  # None: off

    @property
    def active(self) -> bool:
        return bool(self.forward_to) or self.vacation is not None


class MailRulesStore:
    """Blocking (SQL): call from a worker thread."""

    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self._engine = engine
        self._clock = clock

    def get(self, account_id: int) -> MailRules:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(mail_rules).where(mail_rules.c.account_id == account_id)).first()
        if row is None:
            return MailRules()
        vacation = None
        if row.vacation_on and (not row.vacation_until or row.vacation_until > self._clock()):
            vacation = Vacation(row.vacation_subject, row.vacation_body,
                                int(row.vacation_days), int(row.vacation_until))
        targets = tuple(t for t in str(row.forward_to).split("\n") if t)
        return MailRules(targets, bool(row.forward_keep), vacation)

    def vacation_settings(self, account_id: int) -> tuple[bool, Vacation]:
        """The stored vacation fields even when off (for the settings form)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(mail_rules).where(mail_rules.c.account_id == account_id)).first()
        if row is None:
            return False, Vacation("", "", 7, 0)
        return bool(row.vacation_on), Vacation(row.vacation_subject, row.vacation_body,
                                               int(row.vacation_days), int(row.vacation_until))

    def set_forwarding(self, account_id: int, targets: tuple[str, ...], keep_copy: bool) -> None:
        if len(targets) > MAX_FORWARDS:
            raise ValueError(f"at most {MAX_FORWARDS} forwarding addresses")
        self._write(account_id, forward_to="\n".join(targets), forward_keep=keep_copy)

    def set_vacation(self, account_id: int, on: bool, vacation: Vacation) -> None:
        if not 1 <= vacation.days <= 365:
            raise ValueError("days must be 1 to 365")
        if len(vacation.body) > MAX_VACATION_BODY or len(vacation.subject) > 200:
            raise ValueError("vacation text too long")
        self._write(account_id, vacation_on=on, vacation_subject=vacation.subject,
                    vacation_body=vacation.body, vacation_days=vacation.days,
                    vacation_until=vacation.until)
        if not on:
            with self._engine.begin() as conn:  # a new vacation answers everyone again
                conn.execute(delete(vacation_replies)
                             .where(vacation_replies.c.account_id == account_id))

    def _write(self, account_id: int, **values: object) -> None:
        defaults: dict[str, object] = {
            "forward_to": "", "forward_keep": True, "vacation_on": False,
            "vacation_subject": "", "vacation_body": "", "vacation_days": 7,
            "vacation_until": 0,
        }
        with self._engine.begin() as conn:
            bump_generation(conn)
            done = conn.execute(update(mail_rules).where(mail_rules.c.account_id == account_id)
                                .values(**values)).rowcount
            if not done:
                conn.execute(insert(mail_rules).values(account_id=account_id,
                                                       **{**defaults, **values}))

    def rule_accounts(self) -> frozenset[int]:
        """Accounts with forwarding or a vacation reply on (expired ones included)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(mail_rules.c.account_id).where(
                or_(mail_rules.c.forward_to != "", mail_rules.c.vacation_on.is_(True)))).all()
        return frozenset(int(r.account_id) for r in rows)

    def claim_vacation_reply(self, account_id: int, sender: str, days: int) -> bool:
        """True (and remembered) when `sender` got no reply from this account in `days`.

        Two workers delivering mail of one sender at once both claim: the due
        row is renewed by an UPDATE that re-checks its age (the second waits for
        the first's row lock, then finds it fresh), a first reply's row is
        inserted in a savepoint (the second waits for the first's uncommitted
        key, then finds it taken). Reading then writing sent both a reply, or
        failed the second delivery on the duplicate key
        (tests/test_lock_order.py).
        """
        now = int(self._clock())
        key = sender.lower()[:320]
        vr = vacation_replies.c
        this = (vr.account_id == account_id, vr.sender == key)
        with self._engine.begin() as conn:
            row = conn.execute(select(vr.sent_at).where(*this)).first()
            if row is not None:
                if now - int(row.sent_at) < days * 86400:
                    return False
                renewed = conn.execute(update(vacation_replies).where(
                    *this, vr.sent_at <= now - days * 86400).values(sent_at=now)).rowcount
                return bool(renewed)
            try:
                with conn.begin_nested():
                    conn.execute(insert(vacation_replies).values(
                        account_id=account_id, sender=key, sent_at=now))
            except IntegrityError:
                return False  # claimed by another delivery meanwhile
        return True

class RuleAccounts:
    """Per process: which accounts have rules, renewed when the directory generation moves."""

    def __init__(self, store: MailRulesStore, engine: Engine) -> None:
        self._store = store
        self._reader = GenerationReader(engine)
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._ids: frozenset[int] = frozenset()

    @property
    def local(self) -> bool:
        return self._reader.local

    def ids(self, generation: int | None = None) -> frozenset[int]:
        """The accounts with rules as of `generation` (None: the current one, read now)."""
        if generation is None:
            generation = self._reader.read()
        if generation != self._generation:
            ids = self._store.rule_accounts()
            with self._lock:
                self._ids, self._generation = ids, generation
        return self._ids

    def close(self) -> None:
        self._reader.close()
