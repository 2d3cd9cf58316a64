"""Login throttling as a client sees it on the wire (SMTP AUTH and POP3 of `nmail serve`).

The delay tests hold the server's delay (held_delays.HeldDelays as its
`sleep`) instead of timing it: the throttle's delay must be asked for, and
no reply may come while it is held, which a stalled test process cannot
turn into a failure (a wall-clock window could: a test paused between its
send and its look saw the reply as early). The reply must come once let go.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from held_delays import HeldDelays
from line_client import Line, plain
from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.directory import Directory
from nmail.directory.passwords import PasswordHashing
from nmail.directory.throttle import LoginThrottle
from nmail.directory.throttle_store import SqlRecords
from server_rig import PASSWORD, RunningServer, make_data_dir
from support import wait_until

QUIET = 0.3  # how long the test looks for a reply that must not come while held


def smtp_session(port: int, source: str = "127.0.0.1") -> Line:
    client = Line(port, source)
    assert client.reply().startswith(b"220")
    client.send("EHLO laptop")
    assert client.reply().startswith(b"250")
    return client


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_data_dir(tmp_path)


def shared_throttle(data: Path, **settings: float) -> tuple[LoginThrottle, object]:
    engine = make_engine(load_config(data).database_url)
    return LoginThrottle(time.time, records=SqlRecords(engine), **settings), engine  # type: ignore[arg-type]


@pytest.fixture
def server(data: Path) -> Iterator[RunningServer]:
    throttle, engine = shared_throttle(data, first_delay=0, max_delay=0, max_failures=10)
    config = load_config(data)
    config = dataclasses.replace(
        config, pop3=dataclasses.replace(config.pop3, default_domain="test.local")
    )
    with RunningServer(data, throttle=throttle, config=config) as srv:
        srv.add_user("bob@test.local")
        srv.directory.add_domain_alias("alias.test", "test.local")
        yield srv
    engine.dispose()  # type: ignore[attr-defined]


def test_twenty_parallel_wrong_auths_get_at_most_ten_tries(server: RunningServer) -> None:
    # A hash that takes a while to check, as a real one does: time for a race.
    slow = PasswordHashing(PasswordHasher(time_cost=2, memory_cost=16384, parallelism=1))
    Directory(server.runtime.engine, passwords=slow).set_password("bob@test.local", PASSWORD)
    port = server.port("submission")
    clients = [smtp_session(port) for _ in range(20)]
    start = threading.Barrier(20, timeout=30)
    replies: list[bytes] = []
    lock = threading.Lock()

    def guess(client: Line, n: int) -> None:
        start.wait()
        client.send("AUTH PLAIN " + plain("bob@test.local", f"wrong-{n}"))
        answer = client.reply()
        with lock:
            replies.append(answer[:3])

    threads = [threading.Thread(target=guess, args=(c, n)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for client in clients:
        client.close()
    assert len(replies) == 20
    assert replies.count(b"535") <= 10
    assert replies.count(b"454") >= 10
    assert set(replies) <= {b"535", b"454"}
    # The account is locked: even the right password is refused, untested.
    client = smtp_session(port)
    client.send("AUTH PLAIN " + plain("bob@test.local", PASSWORD))
    assert client.reply().startswith(b"454 4.7.0")
    client.close()


def test_every_spelling_counts_against_one_account(data: Path) -> None:
    """Wrong passwords under other spellings, on SMTP and POP3, lock the one account."""
    throttle, engine = shared_throttle(data, first_delay=0, max_delay=0, max_failures=5)
    config = load_config(data)
    config = dataclasses.replace(
        config, pop3=dataclasses.replace(config.pop3, default_domain="test.local")
    )
    try:
        with RunningServer(data, throttle=throttle, config=config) as server:
            server.add_user("bob@test.local")
            server.directory.add_domain_alias("alias.test", "test.local")
            # Each guess from another client address: only the account can lock.
            spellings = ("Bob@Test.Local.", '"bob"@test.local', "bob@alias.test",
                         "bob@test\u3002local")
            for n, spelling in enumerate(spellings):
                smtp = smtp_session(server.port("submission"), f"127.0.0.{10 + n}")
                smtp.send("AUTH PLAIN " + plain(spelling, "wrong-password"))
                assert smtp.reply().startswith(b"535"), spelling
                smtp.close()
            pop3 = Line(server.port("pop3"), "127.0.0.20")
            assert pop3.read().startswith(b"+OK")
            pop3.send("USER BOB")  # the default domain completes it
            assert pop3.read().startswith(b"+OK")
            pop3.send("PASS wrong-password")
            assert pop3.read() == b"-ERR [AUTH] Authentication failed"
            pop3.close()
            # Five failures in five spellings: the account is locked for all of them.
            pop3 = Line(server.port("pop3"), "127.0.0.21")
            pop3.read()
            pop3.send("USER bob@test.local")
            pop3.read()
            pop3.send(f"PASS {PASSWORD}")
            assert pop3.read().startswith(b"-ERR [SYS/TEMP]")
            pop3.close()
            smtp = smtp_session(server.port("submission"), "127.0.0.22")
            smtp.send("AUTH PLAIN " + plain("bob@test.local", PASSWORD))
            assert smtp.reply().startswith(b"454 4.7.0")
            smtp.close()
    finally:
        engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture
def slow_server(data: Path) -> Iterator[tuple[RunningServer, HeldDelays]]:
    throttle, engine = shared_throttle(data, first_delay=1.0, max_delay=1.0, max_failures=100)
    delays = HeldDelays()
    with RunningServer(data, throttle=throttle, sleep=delays) as srv:
        srv.add_user("bob@test.local")
        yield srv, delays
    delays.release()
    engine.dispose()  # type: ignore[attr-defined]


def held_back(client: Line, delays: HeldDelays, failures: int) -> None:
    """The server holds the answer to the `failures`th wrong password for the
    throttle's delay (1 s): nothing comes while held, and it goes on when let go."""
    wait_until(lambda: len(delays.asked) == failures, what="the delay asked for")
    assert delays.asked == [1.0] * failures
    assert client.silent_for(QUIET), "the answer came while the failure delay was held"
    delays.release()


def test_a_failed_smtp_auth_is_answered_after_the_delay(
    slow_server: tuple[RunningServer, HeldDelays],
) -> None:
    server, delays = slow_server
    client = smtp_session(server.port("submission"))
    client.send("AUTH PLAIN " + plain("bob@test.local", "wrong-password"))
    held_back(client, delays, 1)
    assert client.reply().startswith(b"535 5.7.8")
    # AUTH LOGIN: the same hold after the password line.
    client.send("AUTH LOGIN")
    assert client.reply() == b"334 VXNlcm5hbWU6"
    client.send(base64.b64encode(b"bob@test.local").decode())
    assert client.reply() == b"334 UGFzc3dvcmQ6"
    client.send(base64.b64encode(b"wrong-password").decode())
    held_back(client, delays, 2)
    assert client.reply().startswith(b"535 5.7.8")
    # A right password is answered at once: the hold is for failures.
    client.send("AUTH PLAIN " + plain("bob@test.local", PASSWORD))
    assert client.reply().startswith(b"235")
    assert len(delays.asked) == 2
    client.close()


def test_a_failed_pop3_login_is_answered_after_the_delay(
    slow_server: tuple[RunningServer, HeldDelays],
) -> None:
    server, delays = slow_server
    client = Line(server.port("pop3"))
    assert client.read().startswith(b"+OK")
    client.send("USER bob@test.local")
    assert client.read().startswith(b"+OK")
    client.send("PASS wrong-password")
    held_back(client, delays, 1)
    assert client.read() == b"-ERR [AUTH] Authentication failed"
    client.send("AUTH PLAIN " + plain("bob@test.local", "wrong-password"))
    held_back(client, delays, 2)
    assert client.read() == b"-ERR [AUTH] Authentication failed"
    client.close()
