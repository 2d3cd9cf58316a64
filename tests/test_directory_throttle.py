"""Login throttling with a fake clock: doubling delays, lockouts, expiry, isolation."""

from __future__ import annotations

import pytest

from nmail.directory.throttle import LoginThrottle
from support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


def test_fresh_attempt_waits_nothing(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock)
    verdict = throttle.check("192.0.2.1", "bob@example.com")
    assert verdict.wait == 0.0 and not verdict.locked


def test_delay_doubles_after_each_failure_up_to_the_cap(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock, max_failures=100)
    waits = []
    for _ in range(7):
        throttle.failure("192.0.2.1", "bob@example.com")
        waits.append(throttle.check("192.0.2.1", "bob@example.com").wait)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0]


def test_delay_counts_down_with_the_clock(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock)
    throttle.failure("192.0.2.1", "bob")
    throttle.failure("192.0.2.1", "bob")
    clock.advance(1.5)
    assert throttle.check("192.0.2.1", "bob").wait == pytest.approx(0.5)
    clock.advance(1.0)
    assert throttle.check("192.0.2.1", "bob").wait == 0.0


def test_lockout_after_max_failures_then_expiry(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock, max_failures=10, window=900, lockout=900)
    for _ in range(9):
        throttle.failure("192.0.2.1", "bob")
        clock.advance(20)
    assert not throttle.check("192.0.2.1", "bob").locked
    throttle.failure("192.0.2.1", "bob")
    verdict = throttle.check("192.0.2.1", "bob")
    assert verdict.locked and verdict.wait == pytest.approx(900)
    clock.advance(600)
    verdict = throttle.check("192.0.2.1", "bob")
    assert verdict.locked and verdict.wait == pytest.approx(300)
    clock.advance(300)
    after = throttle.check("192.0.2.1", "bob")
    assert not after.locked and after.wait == 0.0


def test_lockout_applies_per_account_from_any_ip(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock, max_failures=3)
    for i in range(3):
        throttle.failure(f"198.51.100.{i}", "bob@example.com")
    assert throttle.check("203.0.113.9", "Bob@Example.com").locked
    assert not throttle.check("203.0.113.9", "alice@example.com").locked


def test_lockout_applies_per_ip_for_any_account(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock, max_failures=3)
    for name in ("a", "b", "c"):
        throttle.failure("192.0.2.7", name)
    assert throttle.check("192.0.2.7", "someone-else").locked
    assert not throttle.check("192.0.2.8", "someone-else").locked


def test_ipv6_is_counted_per_64(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock, max_failures=2)
    throttle.failure("2001:db8:1:2::1", None)
    throttle.failure("2001:db8:1:2::ffff", None)
    assert throttle.check("2001:db8:1:2:abcd::5", None).locked
    assert not throttle.check("2001:db8:1:3::1", None).locked


def test_ipv4_mapped_ipv6_is_the_ipv4_address(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock, max_failures=1)
    throttle.failure("::ffff:192.0.2.1", None)
    assert throttle.check("192.0.2.1", None).locked


def test_old_failures_leave_the_window(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock, max_failures=3, window=60)
    throttle.failure("192.0.2.1", "bob")
    throttle.failure("192.0.2.1", "bob")
    clock.advance(61)
    throttle.failure("192.0.2.1", "bob")
    verdict = throttle.check("192.0.2.1", "bob")
    assert not verdict.locked
    assert verdict.wait == 1.0  # one failure in the window: back to the first delay


def test_success_forgets_the_accounts_failures_but_not_the_addresss_nor_a_lockout(
    clock: FakeClock,
) -> None:
    throttle = LoginThrottle(clock, max_failures=3)
    throttle.failure("192.0.2.1", "bob")
    throttle.failure("192.0.2.1", "bob")
    throttle.success("192.0.2.1", "bob")
    assert throttle.check("198.51.100.7", "bob").wait == 0.0
    # The address's failures were not this login's: they stand.
    assert throttle.check("192.0.2.1", None).wait == 2.0
    for _ in range(3):
        throttle.failure("192.0.2.2", "carol")
    throttle.success("192.0.2.2", "carol")
    assert throttle.check("192.0.2.2", "carol").locked


def test_memory_is_bounded(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock, max_entries=50)
    for i in range(500):
        clock.advance(1)
        throttle.failure(f"10.0.{i // 256}.{i % 256}", f"user{i}")
    assert len(throttle) <= 50
    # The newest entries are the ones kept.
    assert throttle.check("10.0.1.243", None).wait > 0


def test_bad_settings_refused() -> None:
    with pytest.raises(ValueError):
        LoginThrottle(max_failures=0)
    with pytest.raises(ValueError):
        LoginThrottle(first_delay=10, max_delay=1)


def test_unparsable_ip_is_still_a_key(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock, max_failures=1)
    throttle.failure("not-an-ip", None)
    assert throttle.check("not-an-ip", None).locked
