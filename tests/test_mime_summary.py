"""summarize(): the index fields of whole messages, Korean and broken ones included."""

from __future__ import annotations

import base64
import email
import email.policy
import logging
import quopri
from email.message import EmailMessage
from pathlib import Path

import pytest

from nmail.mime.parts import MAX_DEPTH, MAX_PARTS
from nmail.mime.summary import (
    MAX_ADDRESS,
    MAX_MESSAGE_ID,
    MAX_NAME,
    MAX_PREVIEW,
    MAX_SUBJECT,
    MessageSummary,
    summarize,
)
from nmail.mime.threads import message_key

DATA = Path(__file__).parent / "data" / "mime"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def message(*headers: str, body: bytes | str = b"", newline: bytes = b"\r\n") -> bytes:
    head = newline.join(h.encode() for h in headers)
    data = body.encode() if isinstance(body, str) else body
    return head + newline + newline + data


@pytest.fixture(autouse=True)
def no_safety_net(caplog: pytest.LogCaptureFixture) -> object:
    """summarize() logs when its last-resort handler fires; no test may need it."""
    caplog.set_level(logging.ERROR, logger="nmail.mime.summary")
    yield
    assert not caplog.records, caplog.text


def test_outlook_ks_c_5601_message() -> None:
    summary = summarize(load("outlook_ks_c_5601.eml"))
    assert summary == MessageSummary(
        date=1764033072,
        from_name="홍길동",
        from_addr="hong@example.co.kr",
        to_addrs='김똠 <kim@example.kr>, "Lee, Younghee" <lee@example.kr>',
        cc_addrs="",
        subject="똠뷁햏 주간 보고",
        message_id="000001d95e1a$12345678$abcdef00@example.co.kr",
        in_reply_to="",
        thread_keys=summary.thread_keys,
        has_attachments=True,
        preview="똠방각하께, 뷁 햏 보고서를 첨부합니다. 감사합니다.",
    )
    assert summary.thread_keys == message_key(summary.message_id)


def test_reply_joins_its_parents_thread() -> None:
    parent = summarize(load("outlook_ks_c_5601.eml"))
    reply = summarize(load("reply_rfc2231.eml"))
    assert _root(reply) == _root(parent)
    assert reply.in_reply_to == parent.message_id
    assert reply.subject == "회신: 똠방"
    assert reply.from_name == "이영희"


def test_related_image_is_not_an_attachment_but_the_pdf_is() -> None:
    reply = summarize(load("reply_rfc2231.eml"))
    assert reply.has_attachments
    # The text part says us-ascii but carries CP949 bytes.
    assert reply.preview == "잘 받았습니다. 확인 후 연락드리겠습니다."


def test_raw_8bit_euc_kr_message_without_mime() -> None:
    summary = summarize(load("raw_8bit_euckr.eml"))
    assert summary.from_name == "관리자"
    assert summary.subject == "[공지] 서버 점검 안내 (똠)"
    assert summary.preview == "안녕하세요. 서버 점검이 있을 예정입니다. 점검 시간: 새벽 2시~4시"
    assert summary.date == 1764028800  # 09:00 KST
    assert not summary.has_attachments


def test_iso_2022_kr_message() -> None:
    summary = summarize(load("iso2022kr.eml"))
    assert summary.subject == "옛날 메일"
    assert summary.preview == "안녕하세요. ISO-2022-KR 로 쓴 옛날 메일입니다."
    assert summary.date == 857350800


def test_html_only_newsletter() -> None:
    summary = summarize(load("html_only_qp.eml"))
    assert summary.subject == "11월 소식"
    assert summary.from_name == "뉴스레터"  # raw UTF-8 in a quoted display name
    assert summary.preview == "미리보기 11월 소식 안녕하세요 & 반갑습니다. 자세히"
    assert "<" not in summary.preview and "color" not in summary.preview
    assert not summary.has_attachments


def test_plain_message_with_lf_endings_and_no_mime() -> None:
    raw = message("From: a@x.kr", "Subject: hi", body="Hello\n\n  there\tfriend\n",
                  newline=b"\n")
    summary = summarize(raw)
    assert (summary.subject, summary.from_addr, summary.preview) == (
        "hi", "a@x.kr", "Hello there friend")


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable", "8bit"])
@pytest.mark.parametrize("charset", ["utf-8", "euc-kr", "ks_c_5601-1987"])
def test_single_part_body_encodings(encoding: str, charset: str) -> None:
    text = "똠방각하 보고서 " * 100 if charset != "utf-8" else "한글 본문입니다 " * 100
    data = text.encode("cp949" if charset != "utf-8" else "utf-8")
    if encoding == "base64":
        body = base64.encodebytes(data)
    elif encoding == "quoted-printable":
        body = quopri.encodestring(data)
    else:
        body = data
    raw = message(f"Content-Type: text/plain; charset={charset}",
                  f"Content-Transfer-Encoding: {encoding}", body=body)
    preview = summarize(raw).preview
    assert 150 <= len(preview) <= 200
    assert " ".join(text.split()).startswith(preview)


def test_preview_is_capped_and_collapsed() -> None:
    raw = message("Subject: x", body="word " * 5000 + "\x00\x01 end")
    preview = summarize(raw).preview
    assert len(preview) <= 200 <= MAX_PREVIEW
    assert "  " not in preview and preview.startswith("word word")


def test_empty_and_headerless_input() -> None:
    empty = summarize(b"")
    assert (empty.date, empty.subject, empty.preview, empty.has_attachments) == (0, "", "", False)
    headerless = summarize(b"just some text\r\nwithout headers\r\n")
    assert headerless.subject == ""
    assert headerless.preview == "just some text without headers"
    assert empty.thread_keys != headerless.thread_keys


def test_missing_headers_give_empty_fields() -> None:
    summary = summarize(message("X-Other: 1", body="body"))
    assert (summary.from_name, summary.from_addr, summary.to_addrs, summary.cc_addrs,
            summary.subject, summary.message_id, summary.in_reply_to, summary.date) == (
        "", "", "", "", "", "", "", 0)
    assert summary.preview == "body"


def test_mbox_from_line_is_skipped() -> None:
    raw = b"From someone@example.kr Tue Nov 25 10:00:00 2025\nSubject: mbox\n\nbody\n"
    assert summarize(raw).subject == "mbox"


def test_headers_without_blank_line() -> None:
    summary = summarize(b"Subject: only headers\r\nFrom: a@x.kr")
    assert (summary.subject, summary.from_addr, summary.preview) == ("only headers", "a@x.kr", "")


def test_a_non_header_line_starts_the_body() -> None:
    summary = summarize(b"Subject: s\r\nthis is not a header\r\nFrom: late@x.kr\r\n")
    assert summary.subject == "s"
    assert summary.from_addr == ""
    assert summary.preview == "this is not a header From: late@x.kr"


def test_first_occurrence_of_a_header_wins() -> None:
    summary = summarize(message("Subject: first", "Subject: second"))
    assert summary.subject == "first"


def test_broken_date_is_zero() -> None:
    assert summarize(message("Date: the day after tomorrow")).date == 0
    assert summarize(message("Date: 2025-11-25 12:00:00 +0900")).date == 1764039600


def test_field_lengths_fit_the_index_columns() -> None:
    long_id = "<" + "i" * 400 + "@x.kr>"
    raw = message(
        "Subject: " + "가" * 3000,
        f'From: "{"N" * 400}" <{"a" * 400}@x.kr>',
        "Message-ID: " + long_id,
        "In-Reply-To: " + long_id,
        "To: " + ", ".join(f"user{n}@example.kr" for n in range(1200)),
    )
    summary = summarize(raw)
    assert len(summary.subject) == MAX_SUBJECT
    assert len(summary.from_name) == MAX_NAME
    assert len(summary.from_addr) == MAX_ADDRESS
    assert len(summary.message_id) == MAX_MESSAGE_ID
    assert len(summary.in_reply_to) == MAX_MESSAGE_ID
    assert len(summary.to_addrs) <= 16000
    assert summary.to_addrs.endswith(".kr")  # cut between addresses


def test_message_ids_without_brackets_and_with_junk() -> None:
    raw = message("Message-ID: plain-id@x.kr",
                  "In-Reply-To: Your message of Monday <parent@x.kr> (sent)",
                  "References: <root@x.kr>\r\n <parent@x.kr>")
    summary = summarize(raw)
    assert (summary.message_id, summary.in_reply_to) == ("plain-id@x.kr", "parent@x.kr")
    root = summarize(message("Message-ID: <root@x.kr>"))
    assert _root(summary) == _root(root)


def test_thread_falls_back_to_in_reply_to_then_subject() -> None:
    parent = summarize(message("Message-ID: <p@x.kr>", "Subject: 안건"))
    child = summarize(message("In-Reply-To: <p@x.kr>", "Subject: Re: 안건"))
    assert _root(child) == _root(parent)
    subjects = ["안건", "Re: 안건", "RE: Fwd: 안건", "회신: 안건", "전달: 답장: 안건",
                "Re[2]: 안건", "FW:  안건", "답장：안건"]
    ids = {summarize(message(f"Subject: {s}")).thread_keys for s in subjects}
    assert len(ids) == 1
    other = summarize(message("Subject: 다른 안건")).thread_keys
    assert other not in ids


def test_messages_with_nothing_to_thread_on_stay_apart() -> None:
    first = summarize(message("From: a@x.kr", body="one"))
    second = summarize(message("From: a@x.kr", body="two"))
    assert first.thread_keys != second.thread_keys


def test_single_part_attachment_message() -> None:
    raw = message("Content-Type: application/pdf; name=\"견적서.pdf\"",
                  "Content-Transfer-Encoding: base64", body="JVBERi0xLjQ=")
    summary = summarize(raw)
    assert summary.has_attachments
    assert summary.preview == ""


def multipart(subtype: str, boundary: str, *parts: bytes, closing: bool = True) -> bytes:
    out = [f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"".encode(), b"",
           b"preamble"]
    for part in parts:
        out += [f"--{boundary}".encode(), part]
    if closing:
        out += [f"--{boundary}--".encode(), b"epilogue"]
    return b"\r\n".join(out)


def part(content_type: str, body: str | bytes, *extra: str) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    head = "\r\n".join([f"Content-Type: {content_type}", *extra]).encode()
    return head + b"\r\n\r\n" + data


def test_multipart_alternative_prefers_plain_text() -> None:
    raw = multipart("alternative", "b1", part("text/html", "<p>html 본문</p>"),
                    part("text/plain", "plain 본문"))
    summary = summarize(raw)
    assert summary.preview == "plain 본문"
    assert not summary.has_attachments


def test_multipart_html_only_is_stripped() -> None:
    raw = multipart("alternative", "b1",
                    part("text/html; charset=euc-kr",
                         "<div>똠방&nbsp;<b>각하</b><br>안녕</div>".encode("cp949")))
    assert summarize(raw).preview == "똠방 각하 안녕"


@pytest.mark.parametrize(
    ("attachment", "expected"),
    [
        (part("application/octet-stream", "x"), True),
        (part("image/jpeg", "x"), True),
        (part("message/rfc822", "Subject: inner\r\n\r\nbody"), True),
        (part("text/plain", "x", "Content-Disposition: attachment"), True),
        (part("text/plain", "x", 'Content-Disposition: inline; filename="메모.txt"'), True),
        (part("text/plain; name=notes.txt", "x"), True),
        (part("text/plain", "second text"), False),
        (part("text/calendar", "BEGIN:VCALENDAR"), False),
        (part("message/delivery-status", "Reporting-MTA: dns; x"), False),
    ],
)
def test_what_counts_as_an_attachment(attachment: bytes, expected: bool) -> None:
    raw = multipart("mixed", "b1", part("text/plain", "본문"), attachment)
    summary = summarize(raw)
    assert summary.has_attachments is expected
    assert summary.preview == "본문"


def test_inline_related_image_and_signature_are_not_attachments() -> None:
    related = multipart("related", "rel", part("text/html", "<img src=cid:a>본문"),
                        part("image/png", "x", "Content-ID: <a>",
                             'Content-Disposition: inline; filename="a.png"'))
    related_body = related.split(b"\r\n\r\n", 1)
    raw = multipart("signed", "sig",
                    b"Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n"
                    + related_body[1],
                    part("application/pkcs7-signature; name=smime.p7s", "x",
                         'Content-Disposition: attachment; filename="smime.p7s"'))
    summary = summarize(raw)
    assert summary.preview == "본문"
    assert summary.has_attachments  # a signature marked "attachment" is shown as one


def test_pgp_signature_part_is_not_an_attachment() -> None:
    raw = multipart("signed", "sig", part("text/plain", "signed text"),
                    part("application/pgp-signature", "-----BEGIN PGP SIGNATURE-----"))
    summary = summarize(raw)
    assert (summary.preview, summary.has_attachments) == ("signed text", False)


def test_korean_attachment_names_do_not_break_detection() -> None:
    name = base64.b64encode("똠방 보고서.hwp".encode("cp949")).decode()
    raw = multipart("mixed", "b1", part("text/plain; charset=utf-8", "본문"),
                    part(f'application/x-hwp; name="=?ks_c_5601-1987?B?{name}?="', "x",
                         "Content-Disposition: attachment; filename*=ks_c_5601-1987''%8C%63"))
    assert summarize(raw).has_attachments


def test_unterminated_multipart_and_prefix_boundaries() -> None:
    raw = multipart("mixed", "ab", part("text/plain", "--abc is not a delimiter\r\nline two"),
                    part("application/zip", "x"), closing=False)
    summary = summarize(raw)
    assert summary.preview == "--abc is not a delimiter line two"
    assert summary.has_attachments


def test_multipart_without_boundary_or_parts_shows_its_body() -> None:
    no_boundary = b"Content-Type: multipart/mixed\r\n\r\nplain words here"
    assert summarize(no_boundary).preview == "plain words here"
    no_parts = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nnothing delimited"
    assert summarize(no_parts).preview == "nothing delimited"


def test_digest_parts_default_to_messages() -> None:
    raw = multipart("digest", "d", b"\r\nSubject: inner\r\n\r\nbody")
    assert summarize(raw).has_attachments


def test_deep_nesting_is_bounded() -> None:
    depth = 5000
    raw = b"".join(
        f"Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n--b{n}\r\n".encode()
        for n in range(depth)
    ) + b"Content-Type: text/plain\r\n\r\ndeep text\r\n"
    summary = summarize(raw)
    assert summary.preview == ""  # the text is below MAX_DEPTH levels
    shallow = b"".join(
        f"Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n--b{n}\r\n".encode()
        for n in range(MAX_DEPTH - 1)
    ) + b"Content-Type: text/plain\r\n\r\nshallow text\r\n"
    assert summarize(shallow).preview == "shallow text"


def test_many_parts_are_bounded() -> None:
    parts = [part("text/plain", "") for _ in range(MAX_PARTS * 4)]
    parts.append(part("application/zip", "x"))
    summary = summarize(multipart("mixed", "m", *parts))
    assert not summary.has_attachments  # the zip is past the part budget
    few = summarize(multipart("mixed", "m", *parts[:10], parts[-1]))
    assert few.has_attachments


def test_summary_of_a_stdlib_built_message() -> None:
    msg = EmailMessage()
    msg["From"] = "김철수 <kim@example.kr>"
    msg["To"] = "이영희 <lee@example.kr>, bob@example.com"
    msg["Cc"] = "Team: a@x.kr, b@x.kr;"
    msg["Subject"] = "전달: 분기 보고서 " + "아주 긴 제목 " * 20
    msg["Date"] = "Tue, 25 Nov 2025 12:00:00 +0900"
    msg["Message-ID"] = "<built@example.kr>"
    msg.set_content("첫 줄입니다.\n\n둘째 줄입니다.\n")
    msg.add_alternative("<p>첫 줄입니다.</p>", subtype="html")
    msg.add_attachment(b"\x00" * 100, maintype="application", subtype="octet-stream",
                       filename="분기 보고서 최종본.xlsx")
    raw = msg.as_bytes()
    summary = summarize(raw)
    # The stdlib's folding loses the spaces at word boundaries (RFC 2047 drops
    # whitespace between encoded words), so compare with what its parser reads back.
    reparsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert summary.subject == str(reparsed["Subject"]).strip()
    assert summary.subject.startswith("전달: 분기 보고서 아주 긴 제목")
    assert summary.from_name == "김철수"
    assert summary.to_addrs == "이영희 <lee@example.kr>, bob@example.com"
    assert summary.cc_addrs == "a@x.kr, b@x.kr"
    assert summary.date == 1764039600
    assert summary.message_id == "built@example.kr"
    assert summary.preview == "첫 줄입니다. 둘째 줄입니다."
    assert summary.has_attachments


def _root(summary: MessageSummary) -> str:
    return summary.thread_keys.split()[0]
