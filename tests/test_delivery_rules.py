"""Issue 11: users' forwarding and vacation replies really happen at delivery."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from nmail.db.tables import queue_recipients
from nmail.directory.mail_rules import MailRulesStore, Vacation
from nmail.policy.autoreply import may_auto_reply
from server_rig import RunningServer, make_data_dir


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(make_data_dir(tmp_path), listeners=("smtp",)) as srv:
        for address in ("bob@example.com", "carol@example.com", "dave@example.com"):
            srv.add_user(address)
        yield srv


def send(server: RunningServer, sender: str, to: str, subject: str,
         extra: str = "") -> None:
    body = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@test>\r\n{extra}\r\nhello\r\n")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail(sender, [to], body.encode())


def subjects(server: RunningServer, address: str) -> list[str]:
    account = server.directory.get_account(address)
    assert account is not None
    return [r.subject for r in server.runtime.store.list_messages(account.id, "INBOX")]


def rules(server: RunningServer) -> MailRulesStore:
    return MailRulesStore(server.runtime.engine, server.runtime.clock)


def account_id(server: RunningServer, address: str) -> int:
    account = server.directory.get_account(address)
    assert account is not None
    return account.id


def test_vacation_answers_once_per_sender(server: RunningServer) -> None:
    rules(server).set_vacation(account_id(server, "bob@example.com"), True,
                               Vacation("휴가 중입니다", "1월 10일에 돌아옵니다.", 7, 0))
    send(server, "carol@example.com", "bob@example.com", "first")
    send(server, "carol@example.com", "bob@example.com", "second")
    assert subjects(server, "bob@example.com") == ["second", "first"]
    assert subjects(server, "carol@example.com") == ["휴가 중입니다"]
    # Another sender gets their own reply.
    send(server, "dave@example.com", "bob@example.com", "third")
    assert subjects(server, "dave@example.com") == ["휴가 중입니다"]


@pytest.mark.parametrize("extra", [
    "List-Id: <dev.lists.example.com>\r\n",
    "Precedence: bulk\r\n",
    "Auto-Submitted: auto-replied\r\n",
    "List-Unsubscribe: <mailto:x@example.com>\r\n",
])
def test_vacation_never_answers_lists_or_robots(server: RunningServer, extra: str) -> None:
    rules(server).set_vacation(account_id(server, "bob@example.com"), True,
                               Vacation("away", "", 7, 0))
    send(server, "carol@example.com", "bob@example.com", "list mail", extra)
    assert subjects(server, "bob@example.com") == ["list mail"]
    assert subjects(server, "carol@example.com") == []


def test_vacation_never_answers_the_null_sender(server: RunningServer) -> None:
    rules(server).set_vacation(account_id(server, "bob@example.com"), True,
                               Vacation("away", "", 7, 0))
    send(server, "", "bob@example.com", "a bounce")
    assert subjects(server, "bob@example.com") == ["a bounce"]
    # Nobody at all got a reply (nothing queued either).
    with server.runtime.engine.connect() as conn:
        assert conn.execute(select(queue_recipients)).first() is None


def test_vacation_off_and_expired_answer_nobody(server: RunningServer) -> None:
    bob = account_id(server, "bob@example.com")
    rules(server).set_vacation(bob, True, Vacation("away", "", 7, 1))  # ended in 1970
    send(server, "carol@example.com", "bob@example.com", "one")
    rules(server).set_vacation(bob, False, Vacation("away", "", 7, 0))
    send(server, "dave@example.com", "bob@example.com", "two")
    assert subjects(server, "carol@example.com") == []
    assert subjects(server, "dave@example.com") == []


def test_forward_keeping_a_copy_and_not(server: RunningServer) -> None:
    store = rules(server)
    bob = account_id(server, "bob@example.com")
    store.set_forwarding(bob, ("carol@example.com",), keep_copy=True)
    send(server, "dave@example.com", "bob@example.com", "kept")
    assert subjects(server, "bob@example.com") == ["kept"]
    assert subjects(server, "carol@example.com") == ["kept"]
    store.set_forwarding(bob, ("carol@example.com",), keep_copy=False)
    send(server, "dave@example.com", "bob@example.com", "moved on")
    assert subjects(server, "bob@example.com") == ["kept"]
    assert subjects(server, "carol@example.com") == ["moved on", "kept"]


def test_forward_to_a_remote_address_is_queued(server: RunningServer) -> None:
    rules(server).set_forwarding(account_id(server, "bob@example.com"),
                                 ("bob.home@remote.example",), keep_copy=True)
    send(server, "dave@example.com", "bob@example.com", "outward")
    with server.runtime.engine.connect() as conn:
        queued = [r.recipient for r in conn.execute(select(queue_recipients)).all()]
    assert queued == ["bob.home@remote.example"]
    assert subjects(server, "bob@example.com") == ["outward"]


def test_two_accounts_forwarding_to_each_other_do_not_loop(server: RunningServer) -> None:
    store = rules(server)
    store.set_forwarding(account_id(server, "bob@example.com"), ("carol@example.com",), True)
    store.set_forwarding(account_id(server, "carol@example.com"), ("bob@example.com",), True)
    send(server, "dave@example.com", "bob@example.com", "ping")
    assert subjects(server, "bob@example.com") == ["ping"]
    assert subjects(server, "carol@example.com") == ["ping"]


def test_rule_store_refuses_bad_values(server: RunningServer) -> None:
    store = rules(server)
    bob = account_id(server, "bob@example.com")
    with pytest.raises(ValueError):
        store.set_forwarding(bob, tuple(f"x{i}@r.example" for i in range(11)), True)
    for bad in (Vacation("", "", 0, 0), Vacation("", "", 400, 0), Vacation("x" * 201, "", 7, 0),
                Vacation("", "y" * 9000, 7, 0)):
        with pytest.raises(ValueError):
            store.set_vacation(bob, True, bad)


@pytest.mark.parametrize(("sender", "headers", "ok"), [
    ("a@x.com", {}, True),
    ("", {}, False),
    ("MAILER-DAEMON@x.com", {}, False),
    ("owner-list@x.com", {}, False),
    ("list-request@x.com", {}, False),
    ("a@x.com", {"auto-submitted": "auto-generated"}, False),
    ("a@x.com", {"auto-submitted": "no"}, True),
    ("a@x.com", {"precedence": "junk"}, False),
])
def test_may_auto_reply(sender: str, headers: dict[str, str], ok: bool) -> None:
    assert may_auto_reply(sender, headers, ["bob@example.com"], "Bob <bob@example.com>") is ok


def test_no_reply_when_not_addressed_directly() -> None:
    assert not may_auto_reply("a@x.com", {}, ["bob@example.com"], "team@example.com")
