"""The login service: one canonical name per account, counted before the check, refunds."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from nmail.directory import Directory, LoginThrottle
from nmail.directory.login import LoginService, LoginStatus
from nmail.directory.login_gate import PasswordGate
from nmail.directory.model import AuthResult
from nmail.directory.passwords import fast_hashing
from nmail.directory.throttle_store import SqlRecords
from support import FakeClock

PASSWORD = "Correct-horse-42"
IP = "192.0.2.1"


@pytest.fixture
def directory(engine: Engine) -> Directory:
    d = Directory(engine, passwords=fast_hashing())
    d.add_domain("example.com")
    d.add_domain("한국.kr")
    d.add_domain_alias("example.net", "example.com")
    d.add_account("example.com", "Bob", "bob", PASSWORD)
    d.add_account("한국.kr", "Kim", "kim", PASSWORD)
    return d


SPELLINGS = [
    ("bob@example.com", None),
    ("Bob@Example.COM", None),
    ("bob@example.com.", None),  # trailing dot
    ('"bob"@example.com', None),  # quoted local part
    ('"\\b\\o\\b"@example.com', None),  # escaped local part
    ("bob@example\u3002com", None),  # ideographic full stop
    ("bob@example\uff0ecom", None),  # full-width full stop
    ("bob@example.net", None),  # domain alias
    ("bob", "example.com"),  # the POP3 default domain
    ("bob", "mail.example.com"),  # the webmail's host name
    ("  bob@example.com ", None),
]


@pytest.mark.parametrize(("name", "hint"), SPELLINGS)
def test_every_spelling_is_one_account(directory: Directory, name: str, hint: str | None) -> None:
    service = LoginService(directory, LoginThrottle(FakeClock()))
    assert service.canonical_name(name, hint) == "bob@example.com"
    result = service.login(name, PASSWORD, IP, domain_hint=hint)
    assert result.ok and result.account is not None
    assert result.account.address == "bob@example.com"


def test_idn_spellings_are_one_account(directory: Directory) -> None:
    service = LoginService(directory, LoginThrottle(FakeClock()))
    for name in ("kim@한국.kr", "kim@XN--3E0B707E.KR", "kim@한국。kr", "KIM@한국.kr."):
        assert service.canonical_name(name) == "kim@xn--3e0b707e.kr"
        assert service.login(name, PASSWORD, IP).ok


def test_names_that_are_no_account(directory: Directory) -> None:
    service = LoginService(directory, LoginThrottle(FakeClock(), first_delay=0))
    for name, hint in [
        ("bob", None),  # no domain and no hint
        ("bob", "elsewhere.example"),  # a hint we do not host
        ("bob@elsewhere.example", None),
        ("bob@@example.com", None),
        ("\x1b[31mbob@example.com", None),
        ("", None),
        ("x" * 5000 + "@example.com", None),
        ("alice@example.com", None),
    ]:
        result = service.login(name, PASSWORD, IP, domain_hint=hint)
        assert result.status is LoginStatus.BAD_CREDENTIALS, name
        assert result.account is None and len(result.name) <= 300


@pytest.mark.parametrize(
    "hint", ["", ".", "..", "\x1b[2J", "com", "a" * 300, "[192.0.2.1]", "example..com", "xn--"]
)
def test_hostile_hints_complete_nothing(directory: Directory, hint: str) -> None:
    service = LoginService(directory, LoginThrottle(FakeClock(), first_delay=0))
    result = service.login("bob", PASSWORD, IP, domain_hint=hint)
    assert result.status is LoginStatus.BAD_CREDENTIALS and result.account is None


def test_spellings_share_one_lockout(directory: Directory) -> None:
    """Three wrong tries in three spellings lock the account for every spelling."""
    clock = FakeClock()
    service = LoginService(directory, LoginThrottle(clock, max_failures=3))
    ips = ("192.0.2.1", "192.0.2.2", "192.0.2.3")
    for (name, hint), ip in zip(SPELLINGS[2:5], ips, strict=True):
        assert service.login(name, "wrong", ip, domain_hint=hint).status is (
            LoginStatus.BAD_CREDENTIALS
        )
    for name, hint in SPELLINGS:
        locked = service.login(name, PASSWORD, "198.51.100.7", domain_hint=hint)
        assert locked.status is LoginStatus.LOCKED_OUT and locked.account is None


def test_the_client_address_is_throttled_across_accounts(directory: Directory) -> None:
    service = LoginService(directory, LoginThrottle(FakeClock(), max_failures=3))
    for name in ("a@example.com", "b@example.com", "c@example.com"):
        service.login(name, "wrong", "2001:db8:1:2::1")
    # The same /64, another account: refused before any password check.
    assert service.login("bob@example.com", PASSWORD, "2001:db8:1:2::99").status is (
        LoginStatus.LOCKED_OUT
    )
    assert service.login("bob@example.com", PASSWORD, "2001:db8:1:3::1").ok


def test_failure_delays_grow_and_a_right_password_refunds(directory: Directory) -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock, max_failures=4)
    service = LoginService(directory, throttle, max_delay=3.0)
    delays = [service.login("bob@example.com", "wrong", IP).delay for _ in range(3)]
    assert delays == [1.0, 2.0, 3.0]  # 4.0 capped at max_delay
    # The fourth (the last allowed) is right: it is not the one that locks.
    assert service.login("bob@example.com", PASSWORD, IP).ok
    assert not throttle.check(IP, "bob@example.com").locked
    # The account's count is gone; the address keeps its three failures.
    assert throttle.check("198.51.100.7", "bob@example.com").wait == 0.0
    assert throttle.check(IP, None).wait == 3.0 + 1.0


def test_one_known_account_does_not_let_an_address_spray_others(
    directory: Directory, engine: Engine
) -> None:
    """A good login refunds its own attempt only: the address's guesses at others stand."""
    clock = FakeClock(1_790_000_000.0)
    throttle = LoginThrottle(clock, first_delay=0, max_failures=5, records=SqlRecords(engine))
    service = LoginService(directory, throttle)
    statuses = []
    for victim in range(12):
        # The attacker's own account between guesses, as a reset would need.
        assert service.login("bob@example.com", PASSWORD, IP).status in (
            LoginStatus.OK, LoginStatus.LOCKED_OUT)
        statuses.append(service.login(f"user{victim}@example.com", "guess", IP).status)
    assert statuses[:4] == [LoginStatus.BAD_CREDENTIALS] * 4
    # The fifth guess from this address starts the lockout; after it nothing is tried.
    assert statuses[5:] == [LoginStatus.LOCKED_OUT] * 7
    assert service.login("bob@example.com", PASSWORD, IP).status is LoginStatus.LOCKED_OUT
    # Another address is not affected, nor is bob's account.
    assert service.login("bob@example.com", PASSWORD, "198.51.100.7").ok


def test_the_tenth_try_right_does_not_lock_the_owner_out(directory: Directory) -> None:
    throttle = LoginThrottle(FakeClock(), first_delay=0, max_failures=10)
    service = LoginService(directory, throttle)
    for _ in range(9):
        service.login("bob@example.com", "wrong", IP)
    assert service.login("bob@example.com", PASSWORD, IP).ok
    assert service.login("bob@example.com", PASSWORD, IP).ok


def test_disabled_is_said_only_to_the_right_password(directory: Directory) -> None:
    directory.set_login_enabled("bob@example.com", False)
    service = LoginService(directory, LoginThrottle(FakeClock()))
    assert service.login("bob@example.net", PASSWORD, IP).status is LoginStatus.DISABLED
    assert service.login("bob@example.net", "wrong", IP).status is LoginStatus.BAD_CREDENTIALS


def test_a_broken_directory_is_a_temporary_failure(directory: Directory) -> None:
    class Broken:
        def login_name(self, name: str, domain_hint: str | None = None) -> str:
            return directory.login_name(name, domain_hint)

        def authenticate(self, address: str, password: str) -> AuthResult:
            raise OSError("database gone")

    service = LoginService(Broken(), LoginThrottle(FakeClock()))
    assert service.login("bob@example.com", PASSWORD, IP).status is LoginStatus.TEMPORARY


class SlowDirectory:
    """The real directory, with every password check held until all callers are in."""

    def __init__(self, directory: Directory, callers: int) -> None:
        self.directory = directory
        self.checked = 0
        self._lock = threading.Lock()
        self._barrier = threading.Barrier(callers, timeout=5)

    def login_name(self, name: str, domain_hint: str | None = None) -> str:
        return self.directory.login_name(name, domain_hint)

    def authenticate(self, address: str, password: str) -> AuthResult:
        with self._lock:
            self.checked += 1
        # Broken only when fewer callers got this far than the throttle allows.
        with contextlib.suppress(threading.BrokenBarrierError):
            self._barrier.wait()
        return self.directory.authenticate(address, password)


def test_parallel_attempts_on_two_workers_are_all_counted(
    directory: Directory, engine: Engine
) -> None:
    """Twenty attempts at once through two 'processes' (SQL-shared counts): ten checked."""
    clock = FakeClock(1_790_000_000.0)
    slow = SlowDirectory(directory, 10)
    workers = [
        LoginService(
            slow, LoginThrottle(clock, first_delay=0, max_failures=10, records=SqlRecords(engine)),
            # Room for all ten checks at once: the race is the throttle's (login_gate.py
            # would otherwise hold all but one per CPU back).
            gate=PasswordGate(20, 0),
        )
        for _ in range(2)
    ]
    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(
                lambda i: workers[i % 2].login("bob@example.com", "wrong", f"192.0.2.{i}"),
                range(20),
            )
        )
    statuses = [r.status for r in results]
    assert slow.checked == 10
    assert statuses.count(LoginStatus.BAD_CREDENTIALS) == 10
    assert statuses.count(LoginStatus.LOCKED_OUT) == 10
