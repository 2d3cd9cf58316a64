"""A vacation reply carries no header field that the message it answers smuggled in.

email's header registry decodes encoded words it is given and writes a
decoded CR LF as a line break (Python < 3.13): a subject or Message-ID of
the sender's choosing added fields to our reply, with no user action.
The replies are read back from the (local) sender's mailbox.
"""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from nmail.directory.mail_rules import MailRulesStore, Vacation
from nmail.mime.reading import read_view
from server_rig import RunningServer, make_data_dir

SMUGGLED_ID = "=?utf-8?q?=0d=0aX-From-Id:_1?=@evil.example"
# Decodes to the text "=?utf-8?q?=0d=0aX-From-Subject:_1?=".
SUBJECT = "=?utf-8?b?" + base64.b64encode(b"=?utf-8?q?=0d=0aX-From-Subject:_1?=").decode() + "?="


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(make_data_dir(tmp_path), listeners=("smtp",)) as srv:
        yield srv


def _header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n")
            if line and not line[0].isspace()]


@pytest.mark.parametrize("name", ["Bob", "김철수", 'Bob "=?utf-8?q?=0d=0aX-Name:_1?="'])
def test_vacation_reply_keeps_the_senders_text_as_text(server: RunningServer,
                                                      name: str) -> None:
    bob = server.add_user("bob@example.com")
    carol = server.add_user("carol@example.com")
    server.directory.set_display_name("bob@example.com", name)
    rules = MailRulesStore(server.runtime.engine, server.runtime.clock)
    rules.set_vacation(bob.id, True, Vacation("", "away", 7, 0))
    message = (f"From: carol@example.com\r\nTo: bob@example.com\r\nSubject: {SUBJECT}\r\n"
               f"Message-ID: <{SMUGGLED_ID}>\r\n\r\nhello\r\n")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("carol@example.com", ["bob@example.com"], message.encode())
    store = server.runtime.store
    [row] = store.list_messages(carol.id, "INBOX")
    raw = store.read_message(carol.id, "INBOX", row.uid) or b""
    assert not [n for n in _header_names(raw) if n.startswith(("x-from", "x-name"))]
    view = read_view(raw)
    assert view.subject == "Re: =?utf-8?q?=0d=0aX-From-Subject:_1?="
    assert view.in_reply_to == SMUGGLED_ID
    assert view.sender[0][1] == "bob@example.com"
    if "=?" not in name:
        assert view.sender[0][0] == name
