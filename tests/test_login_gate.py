"""The password gate (directory/login_gate.py): at most `checks` at once, `waiting`
in line first come first served, the rest refused at once; refusals logged
once per interval; the login service answers BUSY, not counted by the throttle."""

from __future__ import annotations

import logging
import threading

import pytest

from nmail.directory.login import LoginService, LoginStatus
from nmail.directory.login_gate import MAX_PLACES, PasswordGate
from nmail.directory.model import AuthResult, AuthStatus
from nmail.directory.throttle import LoginThrottle
from support import FakeClock, wait_until


def test_sizes_keep_half_the_pool() -> None:
    gate = PasswordGate()
    assert gate.checks >= 1
    assert gate.checks + gate.waiting <= MAX_PLACES
    assert PasswordGate(0, -3).checks == 1  # nonsense sizes are made the smallest sane ones
    assert PasswordGate(0, -3).waiting == 0


def test_checks_then_line_then_refused_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    gate = PasswordGate(2, 2, max_wait=1000.0, clock=clock)
    assert gate.enter() and gate.enter()
    order: list[int] = []

    def wait(n: int) -> None:
        if gate.enter():
            order.append(n)

    first = threading.Thread(target=wait, args=(1,))
    first.start()
    wait_until(lambda: gate.in_line == 1, 10, "first in line")
    second = threading.Thread(target=wait, args=(2,))
    second.start()
    wait_until(lambda: gate.in_line == 2, 10, "second in line")
    with caplog.at_level(logging.WARNING, "nmail.login"):
        assert not gate.enter()  # line full: refused at once
        assert not gate.enter()
    assert len(caplog.records) == 1  # once per interval
    assert "2 checking, 2 waiting" in caplog.text
    gate.leave()
    first.join(10)
    assert order == [1]  # first come, first served
    gate.leave()
    second.join(10)
    assert order == [1, 2]
    assert gate.running == 2 and gate.in_line == 0
    gate.leave()
    gate.leave()
    assert gate.running == 0
    # After the interval the next refusal is logged again, with the count in between.
    assert gate.enter() and gate.enter()
    gate2 = PasswordGate(1, 0, clock=clock)
    assert gate2.enter()
    caplog.clear()
    with caplog.at_level(logging.WARNING, "nmail.login"):
        assert not gate2.enter()
        assert not gate2.enter()
        clock.advance(11)
        assert not gate2.enter()
    assert len(caplog.records) == 2
    assert "(2 refused since the last report)" in caplog.records[1].getMessage()
    gate.leave()
    gate.leave()
    gate2.leave()


def test_a_wait_past_its_deadline_is_refused() -> None:
    gate = PasswordGate(1, 1, max_wait=0.0)
    assert gate.enter()
    assert not gate.enter()  # in line, but no time to wait
    assert gate.in_line == 0
    gate.leave()
    assert gate.enter()
    gate.leave()


class Directory:
    def __init__(self) -> None:
        self.checked = 0

    def login_name(self, name: str, domain_hint: str | None = None) -> str:
        return name

    def authenticate(self, address: str, password: str) -> AuthResult:
        self.checked += 1
        return AuthResult(AuthStatus.BAD_CREDENTIALS)


def test_a_busy_login_is_neither_checked_nor_counted() -> None:
    """A flood that fills the gate must not lock out a user whose client keeps
    retrying: an unchecked attempt is taken back on the address and the
    account; checked wrong passwords still count and lock as before."""
    gate = PasswordGate(1, 0)
    directory = Directory()
    throttle = LoginThrottle(FakeClock(), first_delay=0, max_failures=3)
    service = LoginService(directory, throttle, gate=gate)
    assert gate.enter()  # every check place taken
    try:
        for _ in range(10):
            assert service.login("bob@example.com", "guess", "192.0.2.1").status is LoginStatus.BUSY
    finally:
        gate.leave()
    assert directory.checked == 0
    # Checked wrong passwords count as ever: the third locks.
    for _ in range(3):
        assert service.login("bob@example.com", "guess", "192.0.2.1").status is (
            LoginStatus.BAD_CREDENTIALS)
    assert service.login("bob@example.com", "guess", "192.0.2.1").status is LoginStatus.LOCKED_OUT
    assert directory.checked == 3 and gate.running == 0


def test_a_busy_attempt_that_started_a_lockout_leaves_it_one_short() -> None:
    gate = PasswordGate(1, 0)
    directory = Directory()
    throttle = LoginThrottle(FakeClock(), first_delay=0, max_failures=3)
    service = LoginService(directory, throttle, gate=gate)
    for _ in range(2):
        assert service.login("ann@example.com", "guess", "192.0.2.9").status is (
            LoginStatus.BAD_CREDENTIALS)
    assert gate.enter()
    try:
        # The third count starts the lockout, but this attempt is never checked.
        assert service.login("ann@example.com", "guess", "192.0.2.9").status is LoginStatus.BUSY
    finally:
        gate.leave()
    assert not throttle.check("192.0.2.9", "ann@example.com").locked
    # One short of the limit: the next checked wrong password locks.
    assert service.login("ann@example.com", "guess", "192.0.2.9").status is (
        LoginStatus.BAD_CREDENTIALS)
    assert service.login("ann@example.com", "guess", "192.0.2.9").status is LoginStatus.LOCKED_OUT
    assert directory.checked == 3
