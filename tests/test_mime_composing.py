"""mime.composing and mime.replying: safe headers, Korean encoding, reply/forward shapes."""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nmail.mime.composing import (
    ComposeError,
    Outgoing,
    OutgoingFile,
    build_message,
    check_address,
    parse_recipients,
)
from nmail.mime.reading import part_content, read_view
from nmail.mime.replying import (
    forward_subject,
    forwarded_text,
    html_to_plain,
    quoted_text,
    reply_recipients,
    reply_subject,
    thread_references,
)


def _korean() -> Outgoing:
    return Outgoing(
        sender=("홍길동", "hong@example.com"),
        to=parse_recipients('김철수 <kim@example.kr>, "Lee, J" <lee@example.org>', "to"),
        bcc=(("", "hidden@example.net"),),
        subject="회의 안건 공유드립니다 — 12월 정기 회의 일정 및 참석자 확인 부탁드립니다",
        text="안녕하세요.\r\n첨부 확인 부탁드립니다.",
        in_reply_to="orig@example.kr",
        references=("root@example.kr", "orig@example.kr"),
        files=(OutgoingFile("견적서 최종.hwp", "application/x-hwp", b"\x00HWP\xff"),),
    )


def test_korean_message_round_trips_through_our_reader_and_the_stdlib() -> None:
    raw = build_message(_korean(), hostname="mail.example.com")
    assert raw.isascii()  # RFC 2047/2231 and base64: no 8-bit byte needed anywhere
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert b"Bcc" not in raw and b"hidden@" not in raw
    view = read_view(raw)
    assert view.subject == _korean().subject
    assert view.sender == [("홍길동", "hong@example.com")]
    assert view.to == [("김철수", "kim@example.kr"), ("Lee, J", "lee@example.org")]
    assert view.text == "안녕하세요.\n첨부 확인 부탁드립니다.\n"
    assert view.in_reply_to == "orig@example.kr"
    assert view.references == ["root@example.kr", "orig@example.kr"]
    assert view.message_id.endswith("@mail.example.com")
    [attachment] = view.attachments
    assert attachment.filename == "견적서 최종.hwp"
    found = part_content(raw, attachment.number)
    assert found is not None and found[1] == b"\x00HWP\xff"
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["Subject"]) == _korean().subject


def test_bcc_is_kept_in_our_own_copy() -> None:
    raw = build_message(_korean(), hostname="h.example", include_bcc=True)
    assert read_view(raw).bcc == [("", "hidden@example.net")]


@pytest.mark.parametrize("bad", [
    "a\r\nBcc: x@y.z", "a@b.c\r\nX: y", "a@b", "@b.c", "a@", "a b@c.d", "a@-b.c", "a@b..c",
    "a..b@c.d", ".a@b.c", "a@b.c>", "<a@b.c>", "a\x00@b.c", "a@b.c\u2028", "a@" + "x" * 300 + ".c",
])
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ComposeError):
        check_address(bad)


def test_international_domain_becomes_idna() -> None:
    assert check_address("user@한국.kr") == "user@xn--3e0b707e.kr"


@pytest.mark.parametrize("field,value", [
    ("subject", "hi\r\nBcc: evil@example.com"), ("subject", "hi\nX-Evil: 1"),
    ("subject", "a\x00b"), ("name", "Kim\r\nBcc: evil@example.com"), ("subject", "x" * 1000),
])
def test_header_injection_is_refused(field: str, value: str) -> None:
    outgoing = Outgoing(sender=(value if field == "name" else "", "me@example.com"),
                        to=(("", "you@example.com"),),
                        subject=value if field == "subject" else "s")
    with pytest.raises(ComposeError):
        build_message(outgoing, hostname="h.example")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
@example("", "a\u1680b")
@example("", "\u3000회의  자료\u3000")
@example("이\u3000영희", "x \u2000 y")
def test_any_name_and_subject_give_one_header_line_each(name: str, subject: str) -> None:
    outgoing = Outgoing(sender=(name, "me@example.com"), to=(("", "you@example.com"),),
                        subject=subject)
    try:
        raw = build_message(outgoing, hostname="h.example")
    except ComposeError:
        return
    header = raw.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0] for line in header.split(b"\r\n") if line[:1] not in b" \t"]
    assert sorted(set(names)) == sorted(names)  # nothing added a second header
    assert set(names) <= {b"Date", b"From", b"To", b"Subject", b"Message-ID", b"MIME-Version",
                          b"User-Agent", b"Content-Type", b"Content-Transfer-Encoding"}
    view = read_view(raw)
    # The subject reads back as typed, only the ends' white space gone (Unicode's
    # too: U+3000, which Korean input methods type, U+1680...). The oracle was
    # " ".join(subject.split()), which Python's split() breaks at those same
    # characters: Hypothesis found U+1680 once, with the product right.
    assert view.subject == subject.strip()


def test_recipients_as_typed() -> None:
    assert parse_recipients("a@example.com; 이영희 <lee@example.kr>", "cc") == (
        ("", "a@example.com"), ("이영희", "lee@example.kr"))
    with pytest.raises(ComposeError):
        parse_recipients("just a name", "to")
    with pytest.raises(ComposeError):
        parse_recipients("a@example.com, bad@", "to")


def test_forward_as_attachment_keeps_the_original() -> None:
    original = (b"From: a@example.kr\r\nSubject: old\r\nMessage-ID: <o@x>\r\n\r\n"
                b"original body\r\n")
    raw = build_message(Outgoing(sender=("", "me@example.com"), to=(("", "you@example.com"),),
                                 subject="Fwd: old", attached_messages=(original,)),
                        hostname="h.example")
    view = read_view(raw)
    [attachment] = view.attachments
    assert attachment.content_type == "message/rfc822"
    found = part_content(raw, attachment.number)
    assert found is not None
    assert read_view(found[1]).subject == "old"
    assert read_view(found[1]).text.strip() == "original body"


def test_reply_shapes() -> None:
    original = read_view(
        b"From: Kim <kim@example.kr>\r\nTo: me@example.com, lee@example.kr\r\n"
        b"Cc: park@example.kr, ME@example.com\r\nSubject: RE: plan\r\n"
        b"Message-ID: <m2@x>\r\nReferences: <m0@x> <m1@x>\r\n\r\nline one\r\n> older\r\n")
    own = {"me@example.com"}
    assert reply_recipients(original, own, to_all=False) == ((("Kim", "kim@example.kr"),), ())
    to, cc = reply_recipients(original, own, to_all=True)
    assert to == (("Kim", "kim@example.kr"), ("", "lee@example.kr"))
    assert cc == (("", "park@example.kr"),)
    assert reply_subject(original.subject) == "RE: plan"
    assert reply_subject("회신: 계획") == "회신: 계획"
    assert reply_subject("계획") == "Re: 계획"
    assert forward_subject("전달: x") == "전달: x" and forward_subject("x") == "Fwd: x"
    assert thread_references(original) == ("m0@x", "m1@x", "m2@x")
    assert quoted_text(original, "Kim wrote:").endswith("Kim wrote:\n> line one\n>> older\n")


def test_reply_to_own_sent_message_goes_to_its_recipients() -> None:
    sent = read_view(b"From: me@example.com\r\nTo: you@example.kr\r\nSubject: s\r\n\r\nx\r\n")
    assert reply_recipients(sent, {"me@example.com"}, to_all=False)[0] == (("", "you@example.kr"),)


def test_forward_inline_and_html_quoting() -> None:
    original = read_view(b"From: a@example.kr\r\nTo: b@example.kr\r\nSubject: s\r\n"
                         b"Content-Type: text/html\r\n\r\n<p>one<br>two</p><script>x</script>"
                         b"<div>&lt;three&gt;</div>")
    assert html_to_plain(original.html) == "one\ntwo\n<three>"
    # A table's cells stay apart (a forwarded quote read "품목수량단가" before).
    table = "<table><tr><th>품목</th><th>수량</th></tr><tr><td>서버</td><TD>12</TD></tr></table>"
    assert html_to_plain(table) == "품목 수량\n서버 12"
    text = forwarded_text(original, "Forwarded message",
                          {"from": "From", "date": "Date", "subject": "Subject", "to": "To",
                           "cc": "Cc"})
    assert "---------- Forwarded message ----------\nFrom: a@example.kr\nSubject: s\n" in text
    assert text.rstrip().endswith("one\ntwo\n<three>")
