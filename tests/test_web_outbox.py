"""web.outbox: a webmail send goes through delivery, lands in Sent, marks the original."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nmail.mailstore.store import NewMessage
from nmail.mime.composing import Outgoing, OutgoingFile
from nmail.mime.reading import part_content, read_view
from nmail.web.outbox import Original, Outbox
from server_rig import RunningServer, make_data_dir


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[RunningServer]:
    with RunningServer(make_data_dir(tmp_path, db_url), listeners=("smtp",)) as srv:
        yield srv


def _outbox(server: RunningServer) -> Outbox:
    runtime = server.runtime
    return Outbox(runtime.intake, runtime.store, runtime.config.hostname)


def _newest(server: RunningServer, account_id: int, folder: str) -> bytes:
    store = server.runtime.store
    [row] = store.list_messages(account_id, folder, limit=1)
    raw = store.read_message(account_id, folder, row.uid)
    assert raw is not None
    return raw


def test_send_to_a_local_user_with_attachment_sent_copy_and_answered_mark(
        server: RunningServer) -> None:
    kim = server.add_user("kim@example.kr")
    lee = server.add_user("lee@example.kr")
    store = server.runtime.store
    # Something in Kim's INBOX to answer.
    incoming = b"From: lee@example.kr\r\nSubject: q\r\nMessage-ID: <q1@x>\r\n\r\nquestion\r\n"
    store.store([NewMessage(kim, "INBOX", b"", incoming)])
    [original] = store.list_messages(kim.id, "INBOX")
    data = bytes(range(256)) * 40
    out = Outgoing(sender=("김철수", "kim@example.kr"), to=(("이영희", "lee@example.kr"),),
                   bcc=(("", "kim@example.kr"),), subject="회신: 견적", text="첨부합니다",
                   in_reply_to="q1@x", references=("q1@x",),
                   files=(OutgoingFile("견적서.pdf", "application/pdf", data),))
    result = _outbox(server).send(kim, out, "127.0.0.1",
                                  Original("INBOX", original.uid, "answered"))
    assert result.sent, result.refusals
    received = read_view(_newest(server, lee.id, "INBOX"))
    assert received.subject == "회신: 견적" and received.in_reply_to == "q1@x"
    assert received.bcc == []  # the Bcc never reaches a recipient
    [attachment] = received.attachments
    found = part_content(_newest(server, lee.id, "INBOX"), attachment.number)
    assert found is not None and found[1] == data and attachment.filename == "견적서.pdf"
    sent = read_view(_newest(server, kim.id, "Sent"))
    assert sent.message_id == received.message_id == result.message_id
    assert sent.bcc == [("", "kim@example.kr")]
    flags = {r.uid: r.flags for r in store.list_messages(kim.id, "INBOX", limit=10)}
    assert "\\Answered" in flags[original.uid]


def test_nothing_is_sent_when_a_recipient_is_refused(server: RunningServer) -> None:
    kim = server.add_user("kim@example.kr")
    lee = server.add_user("lee@example.kr")
    out = Outgoing(sender=("", "kim@example.kr"),
                   to=(("", "lee@example.kr"), ("", "nobody@example.kr")), subject="s")
    result = _outbox(server).send(kim, out, "127.0.0.1")
    assert not result.sent
    assert [r.address for r in result.refusals] == ["nobody@example.kr"]
    assert result.refusals[0].code == 550
    assert server.runtime.store.list_messages(lee.id, "INBOX") == []
    assert server.runtime.store.list_messages(kim.id, "Sent") == []


def test_a_user_cannot_send_as_someone_else(server: RunningServer) -> None:
    kim = server.add_user("kim@example.kr")
    lee = server.add_user("lee@example.kr")
    out = Outgoing(sender=("", "lee@example.kr"), to=(("", "lee@example.kr"),), subject="s")
    result = _outbox(server).send(kim, out, "127.0.0.1")
    assert not result.sent and result.refusals[0].address == "lee@example.kr"
    assert server.runtime.store.list_messages(lee.id, "INBOX") == []


def test_drafts_are_saved_and_replaced(server: RunningServer) -> None:
    kim = server.add_user("kim@example.kr")
    outbox = _outbox(server)
    draft = Outgoing(sender=("", "kim@example.kr"), to=(("", "x@example.org"),),
                     bcc=(("", "y@example.org"),), subject="draft 1", text="v1")
    first = outbox.save_draft(kim, draft)
    second = outbox.save_draft(kim, Outgoing(sender=draft.sender, subject="draft 2"),
                               replaces=first)
    rows = server.runtime.store.list_messages(kim.id, "Drafts")
    assert [r.uid for r in rows] == [second]
    assert "\\Draft" in rows[0].flags
    assert read_view(_newest(server, kim.id, "Drafts")).subject == "draft 2"
    assert read_view(server.runtime.store.read_message(kim.id, "Drafts", second) or b"").bcc \
        == []
    kept = outbox.save_draft(kim, draft)
    assert read_view(server.runtime.store.read_message(kim.id, "Drafts", kept) or b"").bcc == [
        ("", "y@example.org")]
