"""The login throttle with its records in SQL: one count for every process, on each database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from nmail.db.tables import login_failures
from nmail.directory import throttle_store
from nmail.directory.throttle import LoginThrottle
from nmail.directory.throttle_store import SqlRecords
from support import FakeClock


def shared(engine: Engine, clock: FakeClock, **kwargs: float) -> LoginThrottle:
    window = kwargs.get("window", 900.0)
    return LoginThrottle(clock, records=SqlRecords(engine, window), **kwargs)  # type: ignore[arg-type]


def test_delays_double_and_count_down(engine: Engine) -> None:
    clock = FakeClock(1_790_000_000.0)
    throttle = shared(engine, clock, max_failures=100)
    waits = []
    for _ in range(6):
        throttle.failure("192.0.2.1", "bob@example.com")
        waits.append(throttle.check("192.0.2.1", "bob@example.com").wait)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 16.0]
    clock.advance(10.5)
    assert throttle.check("192.0.2.1", "bob@example.com").wait == pytest.approx(5.5)


def test_two_processes_share_one_lockout(engine: Engine) -> None:
    """Failures spread over two workers add up, and both see the lockout."""
    clock = FakeClock(1_790_000_000.0)
    first = shared(engine, clock, max_failures=4, lockout=600)
    second = shared(engine, clock, max_failures=4, lockout=600)
    first.failure("198.51.100.1", "bob@example.com")
    second.failure("198.51.100.2", "bob@example.com")
    first.failure("198.51.100.3", "bob@example.com")
    assert not second.check("203.0.113.9", "bob@example.com").locked
    second.failure("198.51.100.4", "bob@example.com")
    for throttle in (first, second):
        verdict = throttle.check("203.0.113.9", "BOB@example.com")
        assert verdict.locked and verdict.wait == pytest.approx(600)
    # A correct password does not end the lockout early, from either side.
    first.success("203.0.113.9", "bob@example.com")
    assert second.check("203.0.113.9", "bob@example.com").locked
    clock.advance(601)
    assert not first.check("203.0.113.9", "bob@example.com").locked


def test_success_and_the_window_forget_failures(engine: Engine) -> None:
    clock = FakeClock(1_790_000_000.0)
    throttle = shared(engine, clock, max_failures=3, window=60)
    throttle.failure("192.0.2.1", "bob")
    throttle.failure("192.0.2.1", "bob")
    throttle.success("192.0.2.1", "bob", throttle.attempt("192.0.2.1", "bob"))
    assert throttle.check("198.51.100.7", "bob").wait == 0.0
    assert throttle.check("192.0.2.1", None).wait == 2.0  # the address's own failures stand
    assert len(throttle) == 1
    clock.advance(61)
    assert throttle.check("192.0.2.1", None).wait == 0.0
    throttle.failure("192.0.2.2", "carol")
    throttle.success("192.0.2.2", "carol", throttle.attempt("192.0.2.2", "carol"))
    with engine.connect() as conn:  # the address keeps its earlier failure, the account none
        keys = set(conn.scalars(select(login_failures.c.key)))
    assert "ip:192.0.2.2" in keys and "account:carol" not in keys
    throttle.failure("192.0.2.1", "bob")
    throttle.failure("192.0.2.1", "bob")
    clock.advance(61)
    throttle.failure("192.0.2.1", "bob")
    verdict = throttle.check("192.0.2.1", "bob")
    assert not verdict.locked and verdict.wait == 1.0


def test_stale_rows_are_swept(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle_store, "SWEEP_EVERY", 4)
    clock = FakeClock(1_790_000_000.0)
    throttle = shared(engine, clock, window=60)
    throttle.failure("192.0.2.1", "old-one")  # two rows: ip and account
    clock.advance(3600)
    throttle.failure("192.0.2.2", "new-one")  # the fourth write sweeps the old rows
    with engine.connect() as conn:
        keys = set(conn.execute(select(login_failures.c.key)).scalars())
    assert keys == {"ip:192.0.2.2", "account:new-one"}


def test_hostile_names_are_stored_safely(engine: Engine) -> None:
    clock = FakeClock(1_790_000_000.0)
    throttle = shared(engine, clock, max_failures=2)
    name = "x'); DROP TABLE accounts; --" + "\u00e9" * 400
    throttle.failure("not-an-ip", name)
    throttle.failure("not-an-ip", name)
    assert throttle.check("not-an-ip", name).locked
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(login_failures)).scalar_one() == 2


@pytest.mark.parametrize("name", ["bob\0@test.local", "\0", "bob@test.local\udcff",
                                  "\0" * 300], ids=["nul", "only-nul", "surrogate", "300-nuls"])
def test_names_no_database_keeps_are_counted_too(engine: Engine, name: str) -> None:
    """A NUL (POP3 `USER bob\\0@test.local`; PostgreSQL text refuses it) or a lone
    surrogate in a login name: counted and locked like any other, not an error
    (which made every such login a logged traceback and an uncounted try)."""
    clock = FakeClock(1_790_000_000.0)
    throttle = shared(engine, clock, max_failures=2)
    throttle.failure("192.0.2.9", name)
    assert throttle.attempt("192.0.2.9", name).counted
    assert throttle.check("192.0.2.8", name).locked  # the account's own record
    assert not throttle.check("192.0.2.8", "bob@test.local").locked
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(login_failures)).scalar_one() == 2


def test_an_unchecked_attempt_is_taken_back_from_the_shared_count(engine: Engine) -> None:
    """`untried` (the password gate answered busy) on the SQL store: the attempt's
    count goes (times rounded to the store's milliseconds), and a lockout only its
    own count started is lifted, one short of the limit."""
    clock = FakeClock(1_790_000_000.0)
    throttle = shared(engine, clock, first_delay=0, max_failures=3, lockout=600)
    ip, bob = "192.0.2.1", "bob@example.com"
    for _ in range(10):  # a flood answered busy, attempts 0.4 ms apart
        clock.advance(0.0004)
        throttle.untried(ip, bob, throttle.attempt(ip, bob))
    assert not throttle.check(ip, bob).locked
    for _ in range(2):
        clock.advance(0.0123)
        throttle.failure(ip, bob)
    clock.advance(0.0071)
    third = throttle.attempt(ip, bob)  # its count starts the lockout
    assert throttle.check(ip, bob).locked
    throttle.untried(ip, bob, third)
    assert not throttle.check(ip, bob).locked
    assert not throttle.check("198.51.100.7", bob).locked  # nor on the account
    throttle.failure(ip, bob)  # one short: the next checked failure locks
    assert throttle.check(ip, bob).locked
