"""Text from outside never reaches the admin's terminal raw (issue 9 item 8).

An AUTH user name sent to the real server, a Subject and a remote reply in
the queue, an address in an error line: each carries an escape sequence, a
C1 CSI and a bidi override; what the CLI prints holds none of them.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from cli_admin_support import Cli, write_config
from fixtures_outbound import message
from fixtures_smtp_sink import SmtpSink
from nmail.cli.main import main
from nmail.cli.outside_text import escape_controls, escape_json_text, one_line
from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.delivery.log import DeliveryLog
from nmail.directory.throttle import LoginThrottle
from nmail.directory.throttle_store import SqlRecords
from nmail.queue.outbound import OutboundQueue
from server_rig import RunningServer, make_data_dir
from test_submission_signing import dns, world  # noqa: F401  (fixtures)

HOSTILE = "ev\x1b]0;pwned\x07il\x1b[2J\x9b31m\u202etxt.exe\x00"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\x00")


def assert_clean(output: str) -> None:
    for char in RAW:
        assert char not in output, f"{char!r} reached the terminal"


def test_escaping_writes_every_control_out() -> None:
    assert escape_controls(HOSTILE) == (
        "ev\\x1b]0;pwned\\x07il\\x1b[2J\\x9b31m\\u202etxt.exe\\x00"
    )
    assert escape_controls("한국어 text\n\tok") == "한국어 text\n\tok"
    assert one_line("two\nlines\there") == "two\\x0alines\\x09here"
    for char in "\x7f\x85\u061c\u200e\u200f\u2028\u2029\u202a\u2066\u2069":
        assert char not in escape_controls(f"a{char}b")


def test_json_output_is_escaped_and_means_the_same() -> None:
    value = {"reason": HOSTILE, "korean": "수신 거부"}
    dumped = escape_json_text(json.dumps(value, ensure_ascii=False))
    assert_clean(dumped)
    assert "수신 거부" in dumped
    assert json.loads(dumped) == value


def test_lockout_list_escapes_an_attackers_auth_user_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_data_dir(tmp_path)
    engine = make_engine(load_config(data).database_url)
    throttle = LoginThrottle(
        time.time, first_delay=0, max_delay=0, max_failures=100, records=SqlRecords(engine)
    )
    try:
        with RunningServer(data, throttle=throttle) as server, server.smtp(
            "submission"
        ) as client:
            client.ehlo("laptop")
            name = HOSTILE.replace("\x00", "")  # NUL separates PLAIN's fields
            blob = base64.b64encode(f"\0{name}@test.local\0wrong".encode()).decode()
            code, _ = client.docmd("AUTH", "PLAIN " + blob)
            assert code == 535
        capsys.readouterr()
        assert main(["--data", str(data), "lockout", "list"]) == 0
        out = capsys.readouterr().out
        assert_clean(out)
        assert "\\x1b]0;pwned" in out and "\\u202etxt.exe" in out
    finally:
        engine.dispose()


@pytest.fixture
def cli(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("COLUMNS", "250")
    write_config(tmp_path, db_url)
    return Cli(tmp_path, capsys)


def test_queue_list_and_show_escape_headers_and_remote_replies(cli: Cli) -> None:
    config = load_config(cli.data_dir)
    engine = make_engine(config.database_url)
    upgrade(engine)
    try:
        queue = OutboundQueue(engine, config.queue_dir, config)
        entry = queue.enqueue("alice@example.com", ["bob@remote.test"],
                              message(subject=HOSTILE.replace("\x00", "")))
        now = int(time.time())
        claim = queue.store.claim(now, 1, "other/x/1", now + 300)
        assert claim is not None
        queue.store.mark_retry({claim.recipients[0].id: now + 600}, "other/x/1",
                               "mx.remote.test",
                               f"451 4.7.1 {HOSTILE}".replace("\x00", ""))
        for args in (("queue", "list"), ("queue", "show", entry)):
            out = cli.ok(*args)
            assert_clean(out)
            assert "\\x1b[2J" in out
    finally:
        engine.dispose()


def test_an_error_line_is_escaped(cli: Cli) -> None:
    result = cli("user", "del", f"{HOSTILE}@example.com")
    assert result.code == 1
    assert_clean(result.err)
    assert result.err.count("\n") == 1




def test_a_sender_with_bidi_or_c1_characters_is_refused_on_the_wire(
    world: tuple[RunningServer, SmtpSink],  # noqa: F811  (the fixture imported above)
) -> None:
    """An SMTPUTF8 sender with a bidi override and a C1 CSI never gets in (addresses.py)."""
    srv, _sink = world
    with srv.smtp("smtp") as client:
        client.ehlo("remote.example")
        for sender in ("moc.\u202elive\u009b31m@remote.example", "a\u2066b@remote.example"):
            code, text = client.mail(sender, ["SMTPUTF8"])
            assert (code, text) == (
                501, b"5.1.7 Bad sender address syntax (control or bidi character)")
        assert client.mail("x@remote.example", ["SMTPUTF8"])[0] == 250
        code, text = client.rcpt("bob\u202e@test.local")
        assert code == 501 and text.startswith(b"5.1.3")


def test_the_delivery_log_escapes_what_strangers_wrote(tmp_path: Path) -> None:
    """A remote reply (still anyone's text) with a bidi override and a C1 CSI is written out."""
    log = DeliveryLog(tmp_path)
    log.write("id1", "a@test.local", "b@remote.example", 10, "deferred",
              "451 moc.\u202elive\u009b31m\x1b[2J")
    log.close()
    text = "".join(p.read_text() for p in tmp_path.glob("delivery-*.log"))
    assert_clean(text)
    assert "451 moc.\\u202elive\\x9b31m\\x1b[2J" in text
