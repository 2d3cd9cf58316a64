"""Issue 3: authenticated submission on 587 (STARTTLS) and 465 (implicit TLS)."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nmail.cli.main import main
from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.directory.throttle import LoginThrottle
from nmail.directory.throttle_store import SqlRecords
from server_rig import PASSWORD, RunningServer, insecure_context, make_data_dir

MESSAGE = b"From: bob@test.local\r\nTo: carol@test.local\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(make_data_dir(tmp_path)) as srv:
        srv.add_user("bob@test.local")
        srv.add_user("carol@test.local")
        yield srv


def inbox_count(server: RunningServer, address: str) -> int:
    box = server.maildir(address)
    return sum(len(list((box / sub).iterdir())) for sub in ("new", "cur"))


def test_starttls_and_login_on_587(server: RunningServer) -> None:
    with server.smtp("submission") as client:
        client.ehlo("laptop")
        assert client.has_extn("starttls")
        client.starttls(context=insecure_context())
        client.ehlo("laptop")
        assert "PLAIN" in client.esmtp_features["auth"]
        client.login("bob@test.local", PASSWORD)
        assert client.sendmail("bob@test.local", ["carol@test.local"], MESSAGE) == {}
    assert inbox_count(server, "carol@test.local") == 1
    stored = next((server.maildir("carol@test.local") / "new").iterdir()).read_bytes()
    assert b"with ESMTPSA" in stored
    assert b"(authenticated as bob@test.local)" in stored


def test_implicit_tls_on_465(server: RunningServer) -> None:
    with server.smtp("submissions") as client:
        client.ehlo("laptop")
        client.login("bob@test.local", PASSWORD)
        assert client.sendmail("bob@test.local", ["carol@test.local"], MESSAGE) == {}
    assert inbox_count(server, "carol@test.local") == 1


def test_submission_requires_auth(server: RunningServer) -> None:
    with server.smtp("submission") as client:
        client.ehlo("laptop")
        client.starttls(context=insecure_context())
        client.ehlo("laptop")
        code, text = client.mail("bob@test.local")
        assert code == 530
        assert text.startswith(b"5.7.0")


def test_wrong_password_is_535(server: RunningServer) -> None:
    with server.smtp("submissions") as client:
        client.ehlo("laptop")
        with pytest.raises(smtplib.SMTPAuthenticationError) as err:
            client.login("bob@test.local", "wrong-password-1")
        assert err.value.smtp_code == 535


def test_sender_must_be_the_users_own_address(server: RunningServer) -> None:
    server.directory.add_alias("sales@test.local", ["bob@test.local"])
    with server.smtp("submissions") as client:
        client.ehlo("laptop")
        client.login("bob@test.local", PASSWORD)
        code, text = client.mail("carol@test.local")
        assert code == 553
        assert text.startswith(b"5.7.1")
        client.rset()
        assert client.mail("sales@test.local")[0] == 250  # an alias of bob's is his


def test_auth_not_offered_before_tls_outside_plaintext_networks(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    cfg = data / "nmail.toml"
    cfg.write_text(cfg.read_text().replace(
        'plaintext_auth_networks = ["127.0.0.0/8", "::1/128"]', "plaintext_auth_networks = []"
    ))
    with RunningServer(data) as srv:
        srv.add_user("bob@test.local")
        with srv.smtp("submission") as client:
            client.ehlo("laptop")
            assert not client.has_extn("auth")
            code, _ = client.docmd("AUTH", "PLAIN AGJvYkB0ZXN0LmxvY2FsAENvcnJlY3QtaG9yc2UtOQ==")
            assert code == 538
            client.starttls(context=insecure_context())
            client.ehlo("laptop")
            assert client.has_extn("auth")
            client.login("bob@test.local", PASSWORD)


def test_port_25_accepts_auth_after_starttls(server: RunningServer) -> None:
    with server.smtp("smtp") as client:
        client.ehlo("laptop")
        client.starttls(context=insecure_context())
        client.ehlo("laptop")
        client.login("bob@test.local", PASSWORD)
        assert client.sendmail("bob@test.local", ["carol@test.local"], MESSAGE) == {}


def test_authenticated_relay_is_queued(server: RunningServer) -> None:
    if server.runtime.queue is None:
        pytest.skip("outbound queue not available")
    with server.smtp("submissions") as client:
        client.ehlo("laptop")
        client.login("bob@test.local", PASSWORD)
        assert client.sendmail("bob@test.local", ["friend@elsewhere.example"], MESSAGE) == {}
    entries = server.runtime.queue.list_entries()
    assert [r for e in entries for r in e.recipients] != []


def test_a_lockout_is_kept_in_the_database_and_lifted_from_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What one worker process counts, another sees; `nmail lockout clear` lifts it."""
    data = make_data_dir(tmp_path)
    engine = make_engine(load_config(data).database_url)

    def shared() -> LoginThrottle:
        return LoginThrottle(
            time.time, first_delay=0, max_delay=0, max_failures=3, records=SqlRecords(engine)
        )

    try:
        with RunningServer(data, throttle=shared()) as server:
            server.add_user("bob@test.local")
            with server.smtp("submissions") as client, pytest.raises(
                smtplib.SMTPAuthenticationError
            ) as err:
                client.login("bob@test.local", "wrong-password")
            assert err.value.smtp_code == 535
            # The server's count is in the database, where every process sees it
            # (smtplib tried PLAIN, then LOGIN: two failures)...
            records = {key: failures for key, failures, _, _ in SqlRecords(engine).entries()}
            assert records == {"account:bob@test.local": 2, "ip:127.0.0.1": 2}
            # ...and what another process counts locks this one's door too.
            shared().failure("203.0.113.5", "bob@test.local")
            with server.smtp("submissions") as client, pytest.raises(
                smtplib.SMTPAuthenticationError
            ) as err:
                client.login("bob@test.local", PASSWORD)
            assert err.value.smtp_code == 454
            # Any spelling of the account names its one record.
            assert main(["--data", str(data), "lockout", "clear", "BOB@Test.Local."]) == 0
            assert "cleared the failed logins of BOB@Test.Local." in capsys.readouterr().out
            with server.smtp("submissions") as client:
                client.login("bob@test.local", PASSWORD)
    finally:
        engine.dispose()
