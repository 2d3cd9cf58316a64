"""nmail's own notices (nmail.bounce.dsn, sent by the outbound queue) read back right."""

from __future__ import annotations

from nmail.bounce import categories, texts
from nmail.bounce.analysis import analyze
from nmail.bounce.dsn import DsnFacts, RecipientReport, build_dsn

ORIGINAL = (b"From: kim@nmail.test\r\nTo: a@naver.com, b@example.net\r\n"
            b"Subject: =?UTF-8?B?7ZqM7J2Y?=\r\nMessage-ID: <orig.1@nmail.test>\r\n\r\nhello\r\n")
FACTS = DsnFacts("q0123456789ab", "kim@nmail.test", 1796521337.0, ORIGINAL)


def test_two_recipients_two_causes() -> None:
    reports = [
        RecipientReport("a@naver.com", "failed", "5.7.1",
                        "550 5.7.1 <a@naver.com>... Error.your access was denied. Since you "
                        "sent too many e-mails,you are not allowed to send more e-mails",
                        "mx1.naver.com", 1796521339.0),
        RecipientReport("b@example.net", "failed", "5.2.2",
                        "552 5.2.2 <b@example.net>: Mailbox full", "mx.example.net",
                        1796521340.0),
    ]
    result = analyze(build_dsn(FACTS, reports, reporting_mta="mail.nmail.test"))
    assert result is not None and result.source == "dsn" and result.server == "nmail"
    assert [(r.address, r.category, r.code, r.status, r.remote_host) for r in result.recipients] \
        == [("a@naver.com", categories.IP_BLOCKED, 550, "5.7.1", "mx1.naver.com"),
            ("b@example.net", categories.MAILBOX_FULL, 552, "5.2.2", "mx.example.net")]
    assert result.reporting_mta == "mail.nmail.test"
    assert result.original_subject == "회의" and result.original_message_id == "orig.1@nmail.test"
    assert result.date == 1796521339


def test_a_delay_warning_is_a_delay_not_a_failure() -> None:
    report = RecipientReport("a@naver.com", "delayed", "4.3.1",
                             "421 4.3.1 You send too many messages.", "mx1.naver.com",
                             1796521339.0, will_retry_until=1796900000.0)
    result = analyze(build_dsn(FACTS, [report], reporting_mta="mail.nmail.test"))
    assert result is not None and result.delayed
    rcpt = result.recipients[0]
    assert rcpt.action == "delayed" and not rcpt.permanent
    assert rcpt.category == categories.IP_BLOCKED


def test_expiry_and_connection_failures_are_temporary_failures() -> None:
    for reply in (f"{texts.EXPIRED}. Last error: 4.4.1 connection refused",
                  f"{texts.EXPIRED}. Last error: 451 4.3.0 try again later"):
        report = RecipientReport("b@example.net", "failed", "4.4.7", reply, None, 1796521339.0)
        result = analyze(build_dsn(FACTS, [report], reporting_mta="mail.nmail.test"))
        assert result is not None
        assert result.category == categories.TEMPORARY
        assert result.recipients[0].action == "failed"


def test_full_return_and_a_utf8_recipient() -> None:
    facts = DsnFacts("q1", "kim@nmail.test", 1796521337.0, ORIGINAL, ret="FULL")
    report = RecipientReport("홍길동@example.kr", "failed", "5.1.1", "550 5.1.1 User unknown",
                             "mx.example.kr", 1796521339.0)
    result = analyze(build_dsn(facts, [report], reporting_mta="mail.nmail.test"))
    assert result is not None
    assert result.recipients[0].address == "홍길동@example.kr"
    assert result.category == categories.NO_SUCH_USER
    assert result.original_message_id == "orig.1@nmail.test"
