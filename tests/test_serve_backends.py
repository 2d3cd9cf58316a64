"""`nmail serve` end to end on every database the suite was asked for.

Delivery (with a CP949 message whose index row is read back), POP3 and the
queue, driven over sockets against the real command with two workers and
the index writer process, on SQLite, PostgreSQL and MariaDB alike.
"""

from __future__ import annotations

import base64
import poplib
import re
import smtplib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fixtures_smtp_sink import SmtpSink
from nmail.db.engine import make_engine
from nmail.db.tables import messages, queue_recipients
from serve_process import NMAIL, ServeProcess
from support import LoopThread, free_port, wait_until

pytestmark = pytest.mark.timeout(180)
PASSWORD = "Correct-horse-9"

SUBJECT = "회의 자료 보내드립니다"
KOREAN = (
    b"From: =?ks_c_5601-1987?B?" + base64.b64encode("홍길동".encode("cp949"))
    + b"?= <hong@remote.example>\r\n"
    b"To: bob@test.local\r\n"
    b"Subject: =?euc-kr?B?" + base64.b64encode(SUBJECT.encode("euc-kr")) + b"?=\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=ks_c_5601-1987\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n"
    + "안녕하세요, 첨부한 똠방각하 자료를 확인해 주세요.\r\n".encode("cp949")
)


def nmail(data: Path, *args: str) -> None:
    result = subprocess.run(
        [*NMAIL, "--data", str(data), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def data(tmp_path: Path, db_url: str) -> Path:
    d = tmp_path / "data"
    nmail(d, "init", "--hostname", "mail.example.com", "--database-url", db_url)
    cfg = d / "nmail.toml"
    cfg.write_text(re.sub(r'(?m)^(\w+) = "0\.0\.0\.0"$', r'\1 = "off"', cfg.read_text()))
    nmail(d, "domain", "add", "test.local")
    nmail(d, "user", "add", "test.local", "Bob", "bob", PASSWORD)
    return d


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    loop = LoopThread()
    server = loop.run(SmtpSink("127.0.0.1").start())
    try:
        yield server
    finally:
        loop.run(server.stop())
        loop.close()


def test_delivery_index_and_pop3_on_this_database(data: Path, db_url: str) -> None:
    smtp_port, pop3_port = free_port(), free_port()
    srv = ServeProcess(data, f"smtp=127.0.0.1:{smtp_port}", f"pop3=127.0.0.1:{pop3_port}",
                       workers=2)
    try:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            assert client.sendmail("hong@remote.example", ["bob@test.local"], KOREAN) == {}
        engine = make_engine(db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(messages.c.subject, messages.c.from_name, messages.c.from_addr,
                           messages.c.preview)
                ).all()
        finally:
            engine.dispose()
        assert len(rows) == 1
        subject, from_name, from_addr, preview = rows[0]
        assert (subject, from_name, from_addr) == (SUBJECT, "홍길동", "hong@remote.example")
        assert "똠방각하" in preview

        pop = poplib.POP3("127.0.0.1", pop3_port, timeout=30)
        try:
            pop.user("bob@test.local")
            pop.pass_(PASSWORD)
            assert pop.stat()[0] == 1
            _, lines, _ = pop.retr(1)
            assert b"\r\n".join(lines).endswith(KOREAN.rstrip(b"\r\n"))
            pop.dele(1)
        finally:
            pop.quit()
        engine = make_engine(db_url)
        try:
            with engine.connect() as conn:
                assert conn.execute(select(messages.c.id)).all() == []
        finally:
            engine.dispose()
    finally:
        status, _ = srv.stop()
    assert status == 0


def test_the_queue_sends_on_this_database(data: Path, db_url: str, sink: SmtpSink) -> None:
    cfg = data / "nmail.toml"
    cfg.write_text(cfg.read_text().replace(
        "[transport]", f'[transport]\n"remote.example" = "smtp:[127.0.0.1]:{sink.port}"'
    ))
    port = free_port()
    srv = ServeProcess(data, f"smtp=127.0.0.1:{port}", workers=2)
    try:
        for n in range(3):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.login("bob@test.local", PASSWORD)
                client.sendmail("bob@test.local", [f"friend{n}@remote.example"],
                                KOREAN.replace(b"hong@remote.example", b"bob@test.local"))
        wait_until(lambda: len(sink.received) >= 3, 60, "every message at the sink")
        assert sorted(r.rcpts[0] for r in sink.received) == [
            f"friend{n}@remote.example" for n in range(3)
        ]
        engine = make_engine(db_url)
        try:
            def all_delivered() -> bool:
                with engine.connect() as conn:
                    states = conn.execute(select(queue_recipients.c.state)).scalars().all()
                return sorted(states) == ["delivered"] * 3

            wait_until(all_delivered, 60, "the queue rows marked delivered")
        finally:
            engine.dispose()
    finally:
        status, _ = srv.stop()
    assert status == 0
