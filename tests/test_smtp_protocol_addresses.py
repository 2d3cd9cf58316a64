"""MAIL FROM / RCPT TO: paths, mailboxes, length limits, SMTPUTF8 and ESMTP parameters."""

from __future__ import annotations

import pytest

from nmail.protocols.smtp import MailFrom, MailParams, RcptParams, RcptTo, SmtpOptions
from nmail.protocols.smtp.addresses import is_address_literal, is_domain, parse_mailbox
from nmail.protocols.smtp.params import xtext_decode
from nmail.protocols.smtp.replies import CommandError
from smtp_rig import Driver


def mail(argument: str, options: SmtpOptions | None = None) -> tuple[str, Driver]:
    d = Driver(options)
    d.send("EHLO c.test\r\n")
    return d.last(f"MAIL FROM:{argument}\r\n"), d


def rcpt(argument: str, sender: str = "<a@example.org>") -> tuple[str, Driver]:
    d = Driver()
    d.send(f"EHLO c.test\r\nMAIL FROM:{sender}\r\n")
    return d.last(f"RCPT TO:{argument}\r\n"), d


@pytest.mark.parametrize(
    ("path", "address"),
    [
        ("<a@example.org>", "a@example.org"),
        ("<A.B+tag@Example.ORG>", "A.B+tag@example.org"),
        ("<>", ""),
        ("<@relay.example,@other.example:u@example.org>", "u@example.org"),
        ('<"john doe"@example.org>', '"john doe"@example.org'),
        ('<"plain"@example.org>', "plain@example.org"),
        ('<"a\\"b"@example.org>', '"a\\"b"@example.org'),
        ('<"odd>char"@example.org>', '"odd>char"@example.org'),
        ("<u@[192.0.2.7]>", "u@[192.0.2.7]"),
        ("<u@[IPv6:2001:db8::7]>", "u@[IPv6:2001:db8::7]"),
        (" <a@example.org>", "a@example.org"),
        ("<a@Example.org.>", "a@example.org"),  # the absolute form: same domain
    ],
)
def test_sender_paths(path: str, address: str) -> None:
    reply, d = mail(path)
    assert reply == "250 2.1.0 Sender OK"
    assert d.of_type(MailFrom)[0].address == address
    assert d.conn.sender == address


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("a@example.org", "501 5.5.4"),  # no brackets
        ("<a@example.org", "501 5.5.4"),
        ("<a@example.org>SIZE=1", "501 5.5.4"),
        ("<a>", "501 5.1.7"),
        ("<a@>", "501 5.1.7"),
        ("<@example.org>", "501 5.1.7"),
        ("<a..b@example.org>", "501 5.1.7"),
        ("<.a@example.org>", "501 5.1.7"),
        ("<a b@example.org>", "501 5.1.7"),
        ("<a@b@example.org>", "501 5.1.7"),
        ("<a@exa_mple.org>", "501 5.1.7"),
        ("<a@example..org>", "501 5.1.7"),
        ("<a@example.org..>", "501 5.1.7"),
        ("<a@.>", "501 5.1.7"),
        ("<a@[192.0.2.7].>", "501 5.1.7"),
        ("<a@-example.org>", "501 5.1.7"),
        ("<a@[999.1.1.1]>", "501 5.1.7"),
        ('<"unterminated@example.org>', "501 5.5.4"),
        ('<"x"y@example.org>', "501 5.1.7"),
        ("<@bad_route:a@example.org>", "501 5.1.7"),
        ("<@relay.example a@example.org>", "501 5.1.7"),
        ("<" + "l" * 65 + "@example.org>", "553 5.1.7"),
        ("<a@" + ("d" * 63 + ".") * 4 + "org>", "553 5.1.7"),
        ("<ünï@example.org>", "553 5.6.7"),
        ("<a@exämple.org>", "553 5.6.7"),
    ],
)
def test_bad_sender_paths(path: str, code: str) -> None:
    reply, d = mail(path)
    assert reply.startswith(code), reply
    assert not d.of_type(MailFrom)
    assert d.conn.sender is None


def test_local_part_of_exactly_64_octets_is_fine() -> None:
    reply, _ = mail("<" + "l" * 64 + "@example.org>")
    assert reply == "250 2.1.0 Sender OK"


def test_domain_over_255_octets_is_refused_at_rcpt() -> None:
    long_domain = ".".join(["d" * 63] * 4)  # 255 octets
    assert len(long_domain) == 255
    # The whole path (brackets included) may have 256 octets (RFC 5321 4.5.3.1.3).
    assert parse_mailbox(f"a@{long_domain[:250]}", utf8=False, recipient=True)
    for too_long in (f"a@{long_domain}", f"a@{long_domain}x"):
        with pytest.raises(CommandError) as info:
            parse_mailbox(too_long, utf8=False, recipient=True)
        assert info.value.reply.code == 553
        assert info.value.reply.enhanced == "5.1.3"


def test_smtputf8_addresses_need_the_parameter() -> None:
    reply, d = mail("<ünï@exämple.org> SMTPUTF8")
    assert reply == "250 2.1.0 Sender OK"
    assert d.of_type(MailFrom)[0].params.smtputf8
    assert d.last("RCPT TO:<받는이@예시.kr>\r\n") == "250 2.1.5 Recipient OK"
    assert d.of_type(RcptTo)[0].address == "받는이@예시.kr"


def test_utf8_recipient_without_smtputf8_transaction_is_553_5_6_7() -> None:
    reply, _ = rcpt("<받는이@예시.kr>")
    assert reply.startswith("553 5.6.7")


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("<>", "501 5.1.3"),
        ("<b>", "501 5.1.3"),
        ("b@test.local", "501 5.5.4"),
        ("<" + "r" * 65 + "@test.local>", "553 5.1.3"),
    ],
)
def test_bad_recipient_paths(path: str, code: str) -> None:
    reply, d = rcpt(path)
    assert reply.startswith(code), reply
    assert not d.of_type(RcptTo)


def test_missing_from_or_to_keyword() -> None:
    reply, _ = mail("")
    assert reply.startswith("501 5.5.4")
    d = Driver()
    d.send("EHLO c.test\r\n")
    assert d.last("MAIL <a@example.org>\r\n").startswith("501 5.5.4")
    assert d.last("MAIL FROM <a@example.org>\r\n").startswith("501 5.5.4")
    d.send("MAIL FROM:<a@example.org>\r\n")
    assert d.last("RCPT <b@test.local>\r\n").startswith("501 5.5.4")


def test_mail_parameters_are_parsed() -> None:
    reply, d = mail(
        "<a@example.org> SIZE=1000 BODY=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ+2B1 AUTH=<>"
    )
    assert reply == "250 2.1.0 Sender OK"
    assert d.of_type(MailFrom)[0].params == MailParams(
        size=1000, body="8BITMIME", smtputf8=True, ret="HDRS", envid="QQ+1", auth="<>"
    )


def test_auth_parameter_is_xtext_decoded() -> None:
    _, d = mail("<a@example.org> AUTH=a+40example.org")
    assert d.of_type(MailFrom)[0].params.auth == "a@example.org"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ("SIZE=abc", "501 5.5.4"),
        ("SIZE", "501 5.5.4"),
        ("SIZE=-1", "501 5.5.4"),
        ("BODY=BINARYMIME", "501 5.5.4"),
        ("RET=ALL", "501 5.5.4"),
        ("ENVID=bad+zz", "501 5.5.4"),
        ("ENVID=" + "x" * 101, "501 5.5.4"),
        ("ENVID=a+0D+0Ab", "501 5.5.4"),
        ("ENVID=a+0Ab", "501 5.5.4"),
        ("ENVID=a+00", "501 5.5.4"),
        ("ENVID=a+7F", "501 5.5.4"),
        ("AUTH=a+0D+0A@example.org", "501 5.5.4"),
        ("SMTPUTF8=yes", "501 5.5.4"),
        ("SIZE=1 SIZE=2", "501 5.5.4"),
        ("FROBNICATE=1", "555 5.5.4"),
        ("=value", "501 5.5.4"),
        ("SIZE==1", "501 5.5.4"),
    ],
)
def test_bad_mail_parameters(params: str, code: str) -> None:
    reply, d = mail(f"<a@example.org> {params}")
    assert reply.startswith(code), reply
    assert not d.of_type(MailFrom)


def test_size_over_the_limit_is_refused_at_mail() -> None:
    reply, d = mail("<a@example.org> SIZE=1001", SmtpOptions(max_message_size=1000))
    assert reply == "552 5.3.4 Message size exceeds the server limit"
    assert not d.of_type(MailFrom)
    reply, _ = mail("<a@example.org> SIZE=1000", SmtpOptions(max_message_size=1000))
    assert reply == "250 2.1.0 Sender OK"


def test_rcpt_parameters_are_parsed() -> None:
    reply, d = rcpt("<b@test.local> NOTIFY=success,delay ORCPT=rfc822;b+40test.local")
    assert reply == "250 2.1.5 Recipient OK"
    assert d.of_type(RcptTo)[0].params == RcptParams(
        notify=("SUCCESS", "DELAY"), orcpt="rfc822;b@test.local"
    )
    assert d.conn.recipients[0][0] == "b@test.local"


@pytest.mark.parametrize(
    "params",
    [
        "NOTIFY=NEVER,SUCCESS",
        "NOTIFY=SOMETIMES",
        "NOTIFY=",
        "NOTIFY=SUCCESS,SUCCESS",
        "ORCPT=b@test.local",
        "ORCPT=rfc822;",
        "ORCPT=rfc822;bad+g0",
        "ORCPT=rfc822;b+0D+0AX-Injected:+20yes",
        "ORCPT=rfc822;b+00@test.local",
        "ORCPT=utf-8;b\u0085@test.local",
        "SIZE=10",
    ],
)
def test_bad_rcpt_parameters(params: str) -> None:
    reply, d = rcpt(f"<b@test.local> {params}")
    assert reply.startswith(("501 5.5.4", "555 5.5.4")), reply
    assert not d.of_type(RcptTo)


@pytest.mark.parametrize("params", ["NOTIFY=\u017fuccess", "NOTIFY=delay,\u017fuccess",
                                    "NOTIFY=n\u0117ver"])
def test_notify_words_are_ascii_in_a_utf8_transaction(params: str) -> None:
    # "\u017f".upper() is "S": a Unicode upper-casing read "\u017fuccess" as SUCCESS.
    reply, d = rcpt(f"<b@test.local> {params}", sender="<a@example.org> SMTPUTF8")
    assert reply.startswith("501 5.5.4"), reply
    assert not d.of_type(RcptTo)


def test_domain_and_literal_checks() -> None:
    assert is_domain("example.org") and is_domain("localhost")
    assert not is_domain("") and not is_domain("a." * 130 + "org")
    assert is_domain("예시.kr", utf8=True) and not is_domain("예시.kr")
    assert is_address_literal("[10.0.0.1]") and is_address_literal("[ipv6:::1]")
    assert not is_address_literal("[10.0.0]") and not is_address_literal("10.0.0.1")
    assert not is_address_literal("[tag:whatever]")


def test_xtext() -> None:
    assert xtext_decode("a+2Bb+3Dc") == "a+b=c"
    for bad in ("a+2b", "a+", "a=b", "a b"):
        with pytest.raises(CommandError):
            xtext_decode(bad)


UNSEEN = [
    "\u0085",  # C1 NEL
    "\u009b",  # C1 CSI
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # embeddings, overrides
    "\u2066", "\u2067", "\u2068", "\u2069",  # isolates
    "\u200e", "\u200f", "\u061c",  # marks
    "\u2028", "\u2029", "\u2060", "\ufeff",  # separators, other invisible formats
]


@pytest.mark.parametrize("char", UNSEEN, ids=lambda c: f"U+{ord(c):04X}")
def test_controls_and_bidi_characters_are_refused_in_utf8_addresses(char: str) -> None:
    for where in (f"moc.{char}live@example.org", f"a@exa{char}mple.org",
                  f'"x{char}y"@example.org', f"@relay.example:u{char}@example.org"):
        reply, d = mail(f"<{where}> SMTPUTF8")
        assert reply == "501 5.1.7 Bad sender address syntax (control or bidi character)", (
            where, reply)
        assert not d.of_type(MailFrom)
        reply, d = mail("<a@example.org> SMTPUTF8")
        assert reply.startswith("250")
        reply = d.last(f"RCPT TO:<{where}>\r\n")
        assert reply == "501 5.1.3 Bad recipient address syntax (control or bidi character)"
        assert not d.of_type(RcptTo)


def test_joiners_and_ordinary_scripts_stay_allowed() -> None:
    for local in ("क्\u200dष", "👨\u200d👩\u200d👧", "받는이", "ünï", "ر\u064eجل"):
        reply, d = mail(f"<{local}@example.org> SMTPUTF8")
        assert reply == "250 2.1.0 Sender OK", (local, reply)
        assert d.of_type(MailFrom)[0].address == f"{local}@example.org"
