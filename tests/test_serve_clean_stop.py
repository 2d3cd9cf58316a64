"""`nmail serve` skips its start-up repair after a clean stop, and only then.

The real command (two workers, the index writer, the web process), its
stdout's "index repair:" line telling which start did what: a clean stop, a
CLI write between two starts, a kill -9 of every process, the start after it.
"""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from nmail.db.tables import messages
from serve_kill_rig import kill_everything
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data, nmail

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

BODY = b"From: a@remote.example\r\nTo: bob@test.local\r\nSubject: hi\r\n\r\nHello.\r\n"
SKIPPED = "index repair: skipped, every writer of the mail store stopped cleanly"


def send(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("a@remote.example", ["bob@test.local"], BODY)


def rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(messages.c.id)).all())


def row_less_file(data: Path, name: str) -> None:
    """What a crash between a delivery's rename into new/ and its COMMIT leaves."""
    new = data / "mail" / "test.local" / "bob" / "Maildir" / "new"
    (new / f"{int(time.time())}.M1P1Q1.{name}").write_bytes(BODY)


def test_clean_stops_skip_the_repair_and_a_kill_does_not(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    data = make_data(tmp_path, "bob@test.local", database_url=db_url)
    ports = listen_specs("smtp", "http")
    log = tmp_path / "serve.log"

    def start() -> tuple[ServeProcess, str]:
        srv = ServeProcess(data, *as_options(ports), workers=2, log=log)
        return srv, "".join(srv.lines)

    srv, said = start()
    assert SKIPPED in said  # `make_data` (as `nmail init` and `user add`) stopped cleanly
    send(ports["smtp"])
    status, _ = srv.stop()
    assert status == 0
    # A CLI writer between two starts, stopping cleanly too.
    nmail(data, "user", "add", "test.local", "Cy", "cy", PASSWORD)
    # A file another tool put in a Maildir while nmail was stopped: not a crash,
    # so no repair finds it (as documented: `nmail dbsync` does).
    row_less_file(data, "foreign")
    srv, said = start()
    assert SKIPPED in said
    assert rows(engine) == 1
    send(ports["smtp"])
    assert rows(engine) == 2
    kill_everything(srv)
    row_less_file(data, "crashed")  # as if the kill came between rename and COMMIT
    srv, said = start()
    assert "index repair:" in said and SKIPPED not in said
    assert "added=2" in said, said  # the kill's leftover and the foreign file
    assert rows(engine) == 4
    status, _ = srv.stop()
    assert status == 0
    srv, said = start()  # that repair covered the kill: the next clean stop counts
    assert SKIPPED in said
    status, _ = srv.stop()
    assert status == 0
    assert "Traceback" not in log.read_text()
