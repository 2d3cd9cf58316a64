"""The category catalogue and the rule table: every example lands in its own category."""

from __future__ import annotations

import pytest

from nmail.bounce import catalogue, categories
from nmail.bounce.replies import reply_codes
from nmail.bounce.rules import RULES, classify, compile_rules


def _category_of(reply: str) -> str:
    codes = reply_codes(reply)
    return classify(codes.code, codes.status, reply)


@pytest.mark.parametrize(
    ("category", "reply"),
    [(c.id, example) for c in catalogue.CATEGORIES for example in c.examples],
)
def test_every_catalogue_example_is_classified_into_its_category(category: str, reply: str) -> None:
    assert _category_of(reply) == category


def test_every_category_is_written_in_both_languages() -> None:
    ids = [c.id for c in catalogue.CATEGORIES]
    assert len(ids) == len(set(ids)) == 14
    assert ids[-1] == categories.UNKNOWN
    for entry in catalogue.CATEGORIES:
        for lang in ("ko", "en"):
            assert entry.title(lang) and entry.explanation(lang) and entry.remedy(lang)
        assert any("\uac00" <= ch <= "\ud7a3" for ch in entry.explanation_ko)
        assert entry.id == categories.UNKNOWN or len(entry.examples) >= 3


def test_an_unknown_id_reads_as_the_unknown_category() -> None:
    assert catalogue.category("no-such-category").id == categories.UNKNOWN
    assert catalogue.category(categories.SPAM).title("en") == "Rejected as spam"


def test_a_rule_for_a_category_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown category"):
        compile_rules(((categories.SPAM, "", "spam"), ("spamm", "", "x")))


def test_a_new_wording_is_one_line_in_the_table() -> None:
    reply = "550 5.7.1 Kindly go away"
    assert _category_of(reply) == categories.UNKNOWN
    extended = compile_rules(((categories.SPAM, "", r"kindly go away"), *RULES))
    assert classify(550, "5.7.1", reply, extended) == categories.SPAM


@pytest.mark.parametrize(
    ("reply", "code", "status"),
    [
        ("550 5.1.1 <u@d.test>: User unknown", 550, "5.1.1"),
        ("550-5.7.1 [203.0.113.5] blocked", 550, "5.7.1"),
        ("#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##", 550, "5.1.1"),
        ("5.1.0 - Unknown address error 550-'Transaction failed.'", 550, "5.1.0"),
        ("451 mta113.mail.krs.yahoo.com Resources temporarily unavailable [#4.16.5].", 451, ""),
        ("417 Temporary delivery error", 417, ""),
        ("End of socket stream data", None, ""),
        ("host 203.0.113.250 said: 4.4.1 later", None, "4.4.1"),
        ("", None, ""),
    ],
)
def test_reply_codes_are_found_where_servers_put_them(
    reply: str, code: int | None, status: str
) -> None:
    found = reply_codes(reply)
    assert (found.code, found.status) == (code, status)


@pytest.mark.parametrize(
    ("code", "status", "text", "category"),
    [
        (550, "5.1.1", "", categories.NO_SUCH_USER),  # the status alone
        (452, "4.2.2", "", categories.MAILBOX_FULL),
        (552, "5.3.4", "", categories.TOO_BIG),
        (554, "5.4.6", "", categories.LOOP),
        (450, "4.1.1", "", categories.TEMPORARY),  # "no such user", but only for now
        (450, "", "Mailbox unavailable", categories.TEMPORARY),
        (550, "5.7.1", "", categories.UNKNOWN),
        (550, "5.1.1", "<u@d.test>: Recipient address rejected: User unknown in relay "
         "recipient table", categories.NO_SUCH_USER),
        (553, "5.1.8", "<kim@nmail.test>: Sender address rejected: Domain not found",
         categories.UNKNOWN),
        (552, "5.2.2", "<u@d.test>: Recipient address rejected: Quota exceeded",
         categories.MAILBOX_FULL),
        (421, "4.7.28", "Our system has detected an unusual rate of unsolicited mail "
         "originating from your IP address", categories.IP_BLOCKED),
        (550, "5.7.1", "Our system has detected that this message is likely unsolicited mail",
         categories.SPAM),
        (550, "5.7.26", "This message does not have authentication information or fails to "
         "pass authentication checks (SPF or DKIM)", categories.SPAM),
        (553, "5.7.2", "[TSS09] All messages from 192.0.2.1 will be permanently deferred",
         categories.IP_BLOCKED),
        (550, "5.7.606", "Access denied, banned sending IP [192.0.2.1]", categories.RBL),
        (550, "5.7.1", "Unfortunately, messages from [192.0.2.1] weren't sent. Please contact "
         "your Internet service provider since part of their network is on our block list",
         categories.RBL),
        (421, "", "Too many concurrent SMTP connections from this IP address; please try "
         "again later", categories.IP_BLOCKED),
        (554, "5.7.1", "Your access to this mail system has been rejected due to the sending "
         "MTA's poor reputation", categories.IP_BLOCKED),
        (550, "5.1.1", "<u@d.test>: Recipient address rejected: User unknown in virtual "
         "mailbox table", categories.NO_SUCH_USER),
        (550, "", "Recipient address rejected: Access denied", categories.UNKNOWN),
        # Naver's replies carry a four-letter reason code.
        (421, "4.4.5", "CCRT 192.0.2.1: Connection refused. Server is busy(RT)",
         categories.IP_BLOCKED),
        (421, "4.4.1", "CHIC 192.0.2.1: Network is busy.", categories.TEMPORARY),
        (550, "5.1.1", "RUSR 192.0.2.1: No such user: <u@naver.com>", categories.NO_SUCH_USER),
        (451, "", "Relay Server Not Ready.", categories.TEMPORARY),
        (452, "4.4.5", "Insufficient disk space; try again later", categories.TEMPORARY),
        (None, "", "", categories.UNKNOWN),
        (None, "4.4.7", "The maximum number of delivery attempts has been reached. "
         "Last error: 452 4.2.2 Mailbox full", categories.MAILBOX_FULL),
    ],
)
def test_codes_and_words_together(
    code: int | None, status: str, text: str, category: str
) -> None:
    assert classify(code, status, text) == category
