"""mime.reading: one message to the read screen's data (headers, body, attachments)."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.mime.reading import inline_images, part_content, read_view


def _korean_euc() -> bytes:
    encoded = base64.b64encode("회의록 공유".encode("cp949")).decode()
    subject = f"=?ks_c_5601-1987?B?{encoded}?="
    to_name = base64.b64encode("이영희".encode("cp949"))
    return (
        b"From: " + "김철수".encode("cp949") + b" <kim@example.kr>\r\n"
        b"To: =?EUC-KR?B?" + to_name + b"?= <lee@example.com>\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b"Date: Mon, 7 Dec 2026 09:30:00 +0900\r\n"
        b"Message-ID: <m1@example.kr>\r\n"
        b"References: <r0@x> <r1@x>\r\n"
        b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain; charset=euc-kr\r\n\r\n"
        + "똠방각하 뷁 회의는 내일입니다.".encode("cp949") + b"\r\n"
        b"--b1\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=EUC-KR''"
        + "".join(f"%{b:02X}" for b in "견적서.hwp".encode("cp949")).encode() + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"HWP-bytes") + b"\r\n--b1--\r\n"
    )


def test_korean_headers_and_cp949_body() -> None:
    view = read_view(_korean_euc())
    assert view.subject == "회의록 공유"
    assert view.sender == [("김철수", "kim@example.kr")]
    assert view.to == [("이영희", "lee@example.com")]
    assert view.text.startswith("똠방각하 뷁 회의는")  # CP949-only syllables
    assert view.date == 1796603400
    assert view.message_id == "m1@example.kr"
    assert view.references == ["r0@x", "r1@x"]
    [attachment] = view.attachments
    assert attachment.filename == "견적서.hwp"
    found = part_content(_korean_euc(), attachment.number)
    assert found is not None and found[1] == b"HWP-bytes" and found[0].size == 9


def test_html_with_inline_image_and_alternative() -> None:
    image = base64.b64encode(b"\x89PNG-data")
    raw = (
        b"From: a@b.c\r\nSubject: s\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
        b"--r\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
        b"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain\r\n"
        b"--a\r\nContent-Type: text/html\r\n\r\n"
        b"<html><head><meta charset=\"euc-kr\"></head><body>" + "한글".encode("cp949")
        + b"<img src=\"cid:pic@x\"></body></html>\r\n--a--\r\n"
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <pic@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + image + b"\r\n--r--\r\n"
    )
    view = read_view(raw)
    assert view.text == "plain"
    assert "한글" in view.html  # charset from the <meta>, as the MIME header had none
    [inline] = view.attachments
    assert inline.inline and inline.content_id == "pic@x"
    assert inline_images(raw, {"pic@x"}, 10_000) == {"pic@x": ("image/png", b"\x89PNG-data")}
    assert inline_images(raw, {"pic@x"}, 3) == {}  # over the budget: nothing embedded


def test_forwarded_message_and_report_parts() -> None:
    raw = (
        b"From: MAILER-DAEMON@x\r\nSubject: Undelivered\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=z\r\n\r\n"
        b"--z\r\nContent-Type: text/plain\r\n\r\nIt failed.\r\n"
        b"--z\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n"
        b"--z\r\nContent-Type: message/rfc822\r\n\r\nSubject: original\r\n\r\nbody\r\n--z--\r\n"
    )
    view = read_view(raw)
    assert view.has_report
    assert view.text == "It failed."
    assert [(a.filename, a.content_type) for a in view.attachments] == [
        ("message.eml", "message/rfc822")]


def test_flowed_text_is_detected() -> None:
    raw = (b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
           b"a long line \r\ncontinued\r\n")
    view = read_view(raw)
    assert view.text_flowed and view.text == "a long line \ncontinued\n"
    assert not view.text_delsp
    cjk = read_view(b'Content-Type: text/plain; format="flowed"; DelSp=Yes\r\n\r\nx\r\n')
    assert cjk.text_flowed and cjk.text_delsp


def test_part_content_out_of_range() -> None:
    assert part_content(b"Subject: x\r\n\r\nbody", 5) is None
    assert part_content(b"Subject: x\r\n\r\nbody", -1) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_never_raises_on_junk(raw: bytes) -> None:
    view = read_view(raw)
    for attachment in view.attachments:
        assert part_content(raw, attachment.number) is not None
