"""RFC 3464 delivery status notifications as built by bounce/dsn.py."""

from __future__ import annotations

import email
import email.policy

import pytest

from nmail.bounce.dsn import DsnFacts, RecipientReport, build_dsn

ORIGINAL = (
    b"From: =?UTF-8?B?7ZmN6ri464+Z?= <hong@nmail.test>\r\nTo: kim@remote.test\r\n"
    b"Subject: report\r\nMessage-ID: <orig-1@nmail.test>\r\n\r\nsecret body text\r\n"
)
FACTS = DsnFacts("0123456789abcdef", "hong@nmail.test", 1_790_000_000.0, ORIGINAL)


def parse(data: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_failure_notice_structure() -> None:
    reports = [
        RecipientReport("kim@remote.test", "failed", "5.1.1",
                        "550 5.1.1 <kim@remote.test>... User unknown", "mx.remote.test",
                        1_790_000_100.0, "rfc822;kim@remote.test"),
        RecipientReport("lee@remote.test", "failed", "5.2.2",
                        "552 5.2.2 Mailbox full", "mx.remote.test", 1_790_000_100.0),
    ]
    data = build_dsn(FACTS, reports, reporting_mta="mail.nmail.test", now=1_790_000_200.0)
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    msg = parse(data)
    assert msg["Subject"] == "Error sending message [0123456789abcdef] from [mail.nmail.test]"
    assert msg["To"].addresses[0].addr_spec == "hong@nmail.test"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == "<orig-1@nmail.test>"
    assert "0123456789abcdef" in msg["X-MailerError"]
    human, status, headers = list(msg.iter_parts())
    assert human.get_content_type() == "text/plain"
    text = human.get_content()
    for needle in ("kim@remote.test", "lee@remote.test", "mx.remote.test",
                   "550 5.1.1 <kim@remote.test>... User unknown", "552 5.2.2 Mailbox full",
                   "보내신 메일을", "Your message could not be delivered",
                   "Error sending message [0123456789abcdef] from [mail.nmail.test]."):
        assert needle in text
    assert status.get_content_type() == "message/delivery-status"
    raw = data.decode()
    assert "Reporting-MTA: dns; mail.nmail.test" in raw
    assert "Arrival-Date: " in raw
    assert "Original-Recipient: rfc822; kim@remote.test" in raw
    assert raw.count("Action: failed") == 2
    assert "Status: 5.1.1" in raw and "Status: 5.2.2" in raw
    assert "Diagnostic-Code: smtp; 550 5.1.1 <kim@remote.test>... User unknown" in raw
    assert "Last-Attempt-Date: " in raw
    assert headers.get_content_type() == "text/rfc822-headers"
    assert "Subject: report" in raw and "secret body text" not in raw


def test_ret_full_attaches_the_whole_message_and_envid_is_kept() -> None:
    facts = DsnFacts("0123456789abcdef", "hong@nmail.test", 0.0, ORIGINAL, envid="E-42",
                     ret="FULL")
    data = build_dsn(facts, [RecipientReport("kim@remote.test", "failed", "5.0.0", "gone")],
                     reporting_mta="mail.nmail.test")
    msg = parse(data)
    parts = list(msg.iter_parts())
    assert parts[2].get_content_type() == "message/rfc822"
    assert b"secret body text" in data
    assert b"Original-Envelope-Id: E-42" in data
    assert b"Diagnostic-Code: X-nmail; gone" in data


def test_delay_notice() -> None:
    data = build_dsn(
        FACTS,
        [RecipientReport("kim@remote.test", "delayed", "4.4.1", "connect refused", None,
                         1.0, None, 1_790_432_000.0)],
        reporting_mta="mail.nmail.test",
    )
    msg = parse(data)
    assert msg["Subject"].startswith("Delivery delayed")
    assert "X-MailerError" not in msg
    assert b"Action: delayed" in data and b"Will-Retry-Until: " in data
    assert "다시 보내실 필요는 없습니다" in next(iter(msg.iter_parts())).get_content()


def test_remote_reply_cannot_inject_fields() -> None:
    evil = "550 nope\r\nAction: delivered\r\nStatus: 2.0.0\x00\x1b[31m"
    data = build_dsn(FACTS, [RecipientReport("kim@remote.test", "failed", "5.0.0", evil,
                                             "mx\r\nX-Evil: 1")],
                     reporting_mta="mail.nmail.test")
    raw = data.decode()
    assert "\r\nAction: delivered" not in raw
    assert "\r\nX-Evil" not in raw
    assert "\x00" not in raw and "\x1b" not in raw


def test_non_ascii_recipient_uses_global_delivery_status() -> None:
    data = build_dsn(FACTS, [RecipientReport("김@remote.test", "failed", "5.1.1", "550 no")],
                     reporting_mta="mail.nmail.test")
    assert b"message/global-delivery-status" in data
    assert "Final-Recipient: utf-8; 김@remote.test".encode() in data


def test_bad_input_refused() -> None:
    with pytest.raises(ValueError):
        build_dsn(FACTS, [], reporting_mta="mail.nmail.test")
    with pytest.raises(ValueError):
        build_dsn(FACTS, [RecipientReport("a@b.test", "exploded", "5.0.0")],
                  reporting_mta="mail.nmail.test")
