"""`nmail queue list|show|retry|delete|bounce` in-process, with its bad inputs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli_admin_support import Cli, write_config
from fixtures_outbound import message
from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.directory import Directory
from nmail.queue.outbound import OutboundQueue
from nmail.queue.store import BOUNCING, FAILED, QUEUED


@pytest.fixture
def cli(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("COLUMNS", "250")  # these tests read content, not layout
    write_config(tmp_path, db_url)
    return Cli(tmp_path, capsys)


def queue_of(cli: Cli, **kwargs: object) -> OutboundQueue:
    config = load_config(cli.data_dir)
    engine = make_engine(config.database_url)
    upgrade(engine)
    return OutboundQueue(engine, config.queue_dir, config, **kwargs)  # type: ignore[arg-type]


def test_list_and_show(cli: Cli) -> None:
    assert "queue is empty" in cli.ok("queue", "list")
    queue = queue_of(cli)
    first = queue.enqueue("alice@example.com", ["bob@remote.test", "carol@remote.test"],
                          message(subject="Quarterly [report]"))
    second = queue.enqueue("", ["dave@far.test"], message(), is_bounce=True)
    now = int(time.time())
    claim = queue.store.claim(now, 1, "other/x/1", now + 300)
    queue.store.mark_retry({claim.recipients[0].id: now + 600}, "other/x/1", "mx.remote.test",
                           "451 4.7.1 Greylisted [try later]")
    out = cli.ok("queue", "list")
    assert first in out and second in out
    assert "alice@example.com" in out and "bob@remote.test" in out and "<>" in out
    assert "451 4.7.1 Greylisted [try later]" in out, "text printed literally, not as markup"
    assert "2 entries" in out
    # an unreadable entry is listed as such
    broken = queue.enqueue("alice@example.com", ["erin@remote.test"], message())
    queue.spool.move_aside(broken)
    queue.store.mark_corrupt(broken, "unreadable queue entry (truncated)")
    out = cli.ok("queue", "list")
    assert broken in out and "corrupt" in out and "unreadable queue entry" in out
    shown = cli.ok("queue", "show", first)
    assert "carol@remote.test" in shown and "mx.remote.test" in shown
    assert "Subject: Quarterly [report]" in shown
    assert str(queue.spool.path(first)) in shown.replace("\n", "")


def test_retry_delete_and_bounce(cli: Cli) -> None:
    queue = queue_of(cli, is_local_domain=lambda d: d == "example.com")
    Directory(queue.store.engine).add_domain("example.com")
    qid = queue.enqueue("alice@remote-sender.test", ["bob@remote.test"], message())
    later = queue.enqueue("alice@remote-sender.test", ["carol@remote.test"], message())
    local = queue.enqueue("alice@example.com", ["dave@remote.test"], message())
    future = int(time.time()) + 3600
    with queue.store.engine.begin() as conn:
        from nmail.db.tables import queue_recipients as r

        conn.execute(r.update().values(next_attempt=future))
    assert "1 recipient(s) will be tried now" in cli.ok("queue", "retry", qid)
    assert queue.show(qid).recipients[0].next_attempt <= int(time.time())
    assert queue.show(later).recipients[0].next_attempt == future
    assert "3 recipient(s)" in cli.ok("queue", "retry", "--all")

    assert f"deleted {later}" in cli.ok("queue", "delete", later)
    assert not queue.spool.path(later).exists()
    assert later not in cli.ok("queue", "list")

    # remote sender: the notice goes out through the queue with the null sender
    out = cli.ok("queue", "bounce", qid)
    assert "sender notified" in out
    assert queue.show(qid).recipients[0].state == FAILED
    notices = [e for e in queue.list_entries() if e.message.is_bounce]
    assert len(notices) == 1 and notices[0].message.sender == ""
    assert [r.address for r in notices[0].recipients] == ["alice@remote-sender.test"]
    # local sender: the running server (which owns local delivery) finishes it
    out = cli.ok("queue", "bounce", local)
    assert "running server" in out
    assert queue.show(local).recipients[0].state == BOUNCING
    assert cli.refused("queue", "bounce", qid).endswith("has no recipient left to bounce")


@pytest.mark.parametrize("action", ["show", "retry", "delete", "bounce"])
def test_unknown_or_malformed_ids_refused(cli: Cli, action: str) -> None:
    queue = queue_of(cli)
    qid = queue.enqueue("alice@example.com", ["bob@remote.test"], message())
    for bad in ("0123456789abcdef0000", "../../etc/passwd", "NOT-HEX", ""):
        line = cli.refused("queue", action, bad)
        assert "no queue entry" in line
    assert queue.show(qid).recipients[0].state == QUEUED


def test_usage_errors(cli: Cli) -> None:
    assert cli("queue").code == 2
    assert cli("queue", "retry").code == 2
    assert cli("queue", "retry", "abc", "--all").code == 2
    assert cli("queue", "frobnicate").code == 2
