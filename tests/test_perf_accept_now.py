"""Intake.accept_now: acceptance started on the event loop, answered once durable."""

from __future__ import annotations

import shutil
import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from nmail.config import SmtpSettings
from nmail.db.tables import messages
from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.delivery.intake import Intake
from nmail.delivery.log import DeliveryLog
from nmail.directory import Directory
from nmail.directory.mail_rules import MailRulesStore
from nmail.directory.passwords import fast_hashing
from nmail.mailstore.store import MailStore
from nmail.policy.decision import Decision
from server_rig import RunningServer, make_data_dir

BODY = b"From: a@remote.example\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"
CLIENT = ClientInfo(ip="192.0.2.1", helo="client.example")


@dataclass
class Parts:
    directory: Directory
    store: MailStore
    intake: Intake
    root: Path
    logs: Path


@pytest.fixture
def parts(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Parts]:
    directory = Directory(engine, passwords=fast_hashing())
    directory.add_domain("example.com")
    directory.add_account("example.com", "Bob", "bob", "correct-horse")
    store = MailStore(engine, tmp_path / "mail", "mx.example.com")
    log = DeliveryLog(tmp_path / "logs")
    intake = Intake(
        directory, store, None, SmtpSettings(max_message_size=4096), "mx.example.com", log
    )
    # On a shared database (another node may add rules) the fast path answers only
    # from a rule snapshot read in the last seconds; the blocking path reads one.
    # Read it now, and let it stay fresh however slowly a loaded machine runs the test.
    monkeypatch.setattr("nmail.delivery.rules.FRESH_FOR", 3600.0)
    intake.rules.refresh()
    yield Parts(directory, store, intake, tmp_path / "mail", tmp_path / "logs")
    intake.close()
    store.close()
    log.close()


def envelope(parts: Parts, *addresses: str) -> Envelope:
    found = [parts.directory.resolve(a) for a in addresses]
    return Envelope(sender="a@remote.example", recipients=tuple(found), client=CLIENT)


def inbox(parts: Parts) -> Path:
    return parts.root / "example.com" / "bob" / "Maildir"


def finish(parts: Parts, env: Envelope, content: bytes = BODY) -> Decision | None:
    pending = parts.intake.accept_now(env, content)
    assert pending is not None
    pending.stored.result(30)
    return pending.decision()


def row_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(messages.c.id)).all())


def test_accepted_only_once_durable_and_indexed(parts: Parts, engine: Engine) -> None:
    bob = parts.directory.resolve("bob@example.com").accounts[0]
    parts.store.ensure_account(bob)
    decision = finish(parts, envelope(parts, "bob@example.com"))
    assert decision is not None and decision.code == 250
    stored = list((inbox(parts) / "new").iterdir())
    assert len(stored) == 1
    assert stored[0].read_bytes().endswith(BODY)
    assert list((inbox(parts) / "tmp").iterdir()) == []
    assert row_count(engine) == 1
    log = next(parts.logs.glob("delivery-*.log")).read_text()
    assert "\tstored\t250 2.0.0" in log


def test_not_started_when_it_would_block(parts: Parts, engine: Engine) -> None:
    # The mailbox was never delivered to by this store: finding its folders reads
    # the database, so the caller must use accept() in a thread.
    assert parts.intake.accept_now(envelope(parts, "bob@example.com"), BODY) is None
    # Remote recipients are queued by a blocking call too.
    remote = Envelope(
        sender="a@remote.example",
        recipients=(parts.directory.resolve("x@remote.example"),),
        client=CLIENT,
    )
    assert parts.intake.accept_now(remote, BODY) is None
    assert row_count(engine) == 0
    assert parts.intake.accept(envelope(parts, "bob@example.com"), BODY).code == 250
    assert row_count(engine) == 1


def test_bad_messages_are_refused_at_once_and_store_nothing(parts: Parts, engine: Engine) -> None:
    bob = parts.directory.resolve("bob@example.com").accounts[0]
    parts.store.ensure_account(bob)
    too_big = finish(parts, envelope(parts, "bob@example.com"), BODY + b"x" * 5000)
    assert too_big is not None and (too_big.code, too_big.enhanced) == (552, "5.3.4")
    looping = b"".join(b"Received: from x by y; 1 Jan 2026\r\n" for _ in range(40)) + BODY
    loop = finish(parts, envelope(parts, "bob@example.com"), looping)
    assert loop is not None and (loop.code, loop.enhanced) == (554, "5.4.6")
    assert row_count(engine) == 0
    assert list((inbox(parts) / "new").iterdir()) == []
    assert list((inbox(parts) / "tmp").iterdir()) == []


def test_a_maildir_removed_underneath_means_take_the_blocking_path(
    parts: Parts, engine: Engine
) -> None:
    bob = parts.directory.resolve("bob@example.com").accounts[0]
    parts.store.ensure_account(bob)
    shutil.rmtree(inbox(parts))
    assert parts.intake.accept_now(envelope(parts, "bob@example.com"), BODY) is None
    decision = parts.intake.accept(envelope(parts, "bob@example.com"), BODY)
    assert decision.code == 250
    assert len(list((inbox(parts) / "new").iterdir())) == 1
    assert row_count(engine) == 1


def test_a_failed_commit_is_a_temporary_failure(parts: Parts, engine: Engine) -> None:
    bob = parts.directory.resolve("bob@example.com").accounts[0]
    parts.store.ensure_account(bob)
    parts.store.close()  # the index writer is gone: nothing can be committed
    decision = parts.intake.accept_now(envelope(parts, "bob@example.com"), BODY)
    assert decision is not None
    answer = decision.decision()
    assert answer is not None and answer.code == 451
    assert row_count(engine) == 0
    assert list((inbox(parts) / "tmp").iterdir()) == []
    assert "\tdeferred\t451" in next(parts.logs.glob("delivery-*.log")).read_text()


def test_rules_are_those_of_the_generation_read_at_rcpt(parts: Parts, engine: Engine) -> None:
    if not parts.intake.lookups.local:
        pytest.skip("on a database server the loop answers from a snapshot of the rules")
    bob = parts.directory.resolve("bob@example.com").accounts[0]
    parts.store.ensure_account(bob)
    parts.intake.lookups.refresh()  # as the RCPT of the message does
    # Set after that RCPT (it moves the directory generation): the message in
    # transaction takes bob's rules as they were when its recipient was looked
    # up, without reading the generation once more.
    rules = MailRulesStore(engine, time.time)
    rules.set_forwarding(bob.id, ("carol@remote.example",), keep_copy=True)
    before = finish(parts, envelope(parts, "bob@example.com"))
    assert before is not None and before.code == 250
    # The next message's RCPT sees the change: forwarding is the blocking path's.
    parts.intake.lookups.refresh()
    assert parts.intake.accept_now(envelope(parts, "bob@example.com"), BODY) is None
    assert row_count(engine) == 1


def test_smtp_delivery_survives_a_maildir_removed_between_messages(tmp_path: Path) -> None:
    with RunningServer(make_data_dir(tmp_path), listeners=("smtp",)) as server:
        server.add_user("bob@test.local")
        with server.smtp() as client:
            assert client.sendmail("a@remote.example", ["bob@test.local"], BODY) == {}
        shutil.rmtree(server.maildir("bob@test.local"))
        with server.smtp() as client:
            assert client.sendmail("a@remote.example", ["bob@test.local"], BODY) == {}
            # A refusal from memory, at once, after a change by another Directory.
            other = Directory(server.runtime.engine, passwords=fast_hashing())
            other.set_receive_enabled("bob@test.local", False)
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                client.sendmail("a@remote.example", ["bob@test.local"], BODY)
            assert refused.value.recipients["bob@test.local"][0] == 550
        assert len(list((server.maildir("bob@test.local") / "new").iterdir())) == 1
