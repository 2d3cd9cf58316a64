"""The fixture corpus (tests/data/bounces): every bounce classified right, no false bounce.

The corpus is written by tests/data/bounces/generate.py (one directory per
category, at least three server formats each, every reply the seed
quotes) plus hand-written messages that are not bounces. The accuracy is
printed (`pytest -s`) and must be 100%.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmail.bounce import catalogue
from nmail.bounce.analysis import analyze

CORPUS = Path(__file__).parent / "data" / "bounces"
EXPECTED: dict[str, dict[str, object]] = json.loads((CORPUS / "expected.json").read_text())
# Written by hand, apart from the generator's templates: the check that the
# scan is not fitted to them.
HANDWRITTEN: dict[str, dict[str, object]] = json.loads(
    (CORPUS / "handwritten" / "expected.json").read_text())
NOT_BOUNCES = sorted(p.name for p in (CORPUS / "not_bounces").glob("*.eml"))


def test_accuracy_over_the_whole_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    right = 0
    wrong: list[str] = []
    for name, expected in EXPECTED.items():
        result = analyze((CORPUS / name).read_bytes())
        if result is not None and result.category == expected["category"]:
            right += 1
        else:
            wrong.append(f"{name}: {result.category if result else 'not a bounce'}")
    for name, expected in HANDWRITTEN.items():
        result = analyze((CORPUS / "handwritten" / name).read_bytes())
        if result is not None and [r.category for r in result.recipients] == expected[
                "categories"]:
            right += 1
        else:
            wrong.append(f"handwritten/{name}")
    for name in NOT_BOUNCES:
        if analyze((CORPUS / "not_bounces" / name).read_bytes()) is None:
            right += 1
        else:
            wrong.append(f"not_bounces/{name}: taken for a bounce")
    total = len(EXPECTED) + len(HANDWRITTEN) + len(NOT_BOUNCES)
    with capsys.disabled():  # shown in every run, not only with -s
        print(f"\nbounce corpus: {right}/{total} classified right "
              f"({100.0 * right / total:.1f}%)")
    assert wrong == []


def test_every_category_has_three_formats_and_every_seed_reply() -> None:
    formats: dict[str, set[str]] = {}
    for name, expected in EXPECTED.items():
        fmt = name.split("/")[1].split("_", 1)[1].removesuffix(".eml")
        formats.setdefault(str(expected["category"]), set()).add(fmt)
    for entry in catalogue.CATEGORIES:
        assert len(formats.get(entry.id, set())) >= 3, entry.id
    corpus_text = b"".join((CORPUS / name).read_bytes() for name in EXPECTED)
    seed_replies = [
        b"417 Temporary delivery error", b"The maximum number of delivery attempts",
        b"End of socket stream data", b"Invalid server address", b"Bad server response",
        b"550 User unknown", b"550 Mailbox unavailable", b"550 5.1.1 No such user",
        b"This user doesn't have a yahoo.co.kr account", b"550 Account disabled",
        b"550 5.1.1 Inactive mbox", b"550 5.1.1 Suspended user",
        b"This account has been disabled or discontinued [#102]",
        b"552 Requested mail action aborted: exceeded storage allocation",
        b"The recipient's mailbox is full",
        b"550 You are registered as spammer (by user's reject list)",
        b"554 5.0.0 Service unavailable (userid: mail is denied, by spam filter)",
        b"550 Relay denied", b"554 Relay operation rejected", b"550 5.7.1 Unable to relay for",
        b"Since you sent too many e-mails,you are not allowed to send more e-mails",
        b"421 4.3.2 Your IP(111.112.113.114) is filtered", b"421 4.3.1 You send too many messages.",
        b"(SPAM_SUSPECT:IP_CONTROL) (http://cleanip.paran.com)",
        b"Resources temporarily unavailable. Please try again later [#4.16.5].",
        b"421 4.3.2 Your ip is filtered by RBL", b"553 5.3.0 ... Rejected - see http://www.mail-ab",
        b"553-mail rejected because your IP is in DUL.", b"553 Blocked for spam",
        b"550 5.5.0 Your message was rejected.", b"550 Virus in your mail!!!",
        b"552 5.7.0 Illegal Attachment 36si248323nzk+I9:I15", b"Mail loop detected",
        b"Message size excedes the server limit",
    ]
    missing = [reply for reply in seed_replies if reply not in corpus_text]
    assert missing == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bounce_names_its_recipient_and_original(name: str) -> None:
    expected = EXPECTED[name]
    result = analyze((CORPUS / name).read_bytes())
    assert result is not None
    assert result.category == expected["category"]
    assert [r.address for r in result.recipients] == expected["recipients"]
    assert [r.category for r in result.recipients] == expected["categories"]
    assert result.original_subject == expected["subject"]
    assert result.original_message_id == expected["message_id"]
    assert result.date > 0
    rcpt = result.recipients[0]
    assert rcpt.diagnostic  # the remote's words (or the portal's), shown verbatim
    assert rcpt.action == "failed"


@pytest.mark.parametrize("name", sorted(HANDWRITTEN))
def test_handwritten_bounces(name: str) -> None:
    expected = HANDWRITTEN[name]
    result = analyze((CORPUS / "handwritten" / name).read_bytes())
    assert result is not None
    assert [r.address for r in result.recipients] == expected["recipients"]
    assert [r.category for r in result.recipients] == expected["categories"]
    assert (result.original_subject, result.original_message_id) == (
        expected["subject"], expected["message_id"])
    assert result.delayed == expected["delayed"]
    assert result.date > 0


@pytest.mark.parametrize("name", NOT_BOUNCES)
def test_messages_that_are_not_bounces(name: str) -> None:
    assert analyze((CORPUS / "not_bounces" / name).read_bytes()) is None


def test_codes_and_hosts_of_a_few_formats() -> None:
    def first(name: str) -> tuple[int | None, str, str]:
        result = analyze((CORPUS / name).read_bytes())
        assert result is not None
        r = result.recipients[0]
        return r.code, r.status, r.remote_host

    assert first("no_such_user/10_postfix.eml") == (550, "5.1.1", "mx.example.net")
    assert first("no_such_user/09_xmail.eml") == (550, "", "mail.nmail-peer.kr")
    assert first("disabled/18_exim.eml") == (550, "5.1.1", "mx.example.com")
    assert first("loop/52_qmail.eml") == (None, "", "192.0.2.61")
    assert first("rbl/38_xmail.eml") == (421, "4.3.2", "mx1.naver.com")
    assert first("no_such_user/13_exchange_text.eml") == (550, "5.1.1", "MAIL01.mail.example.co.kr")
