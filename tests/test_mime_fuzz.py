"""Fuzzing summarize(): whatever the bytes, it returns index-sized fields and never raises."""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmail.mime.summary import (
    MAX_ADDRESS,
    MAX_ADDRESS_LIST,
    MAX_MESSAGE_ID,
    MAX_NAME,
    MAX_PREVIEW,
    MAX_SUBJECT,
    MessageSummary,
    summarize,
)

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check(summary: MessageSummary, caplog: pytest.LogCaptureFixture) -> None:
    """The summary fits the index and the last-resort handler was not needed."""
    assert not [r for r in caplog.records if r.name == "nmail.mime.summary"], caplog.text
    assert summary.date >= 0
    assert len(summary.subject) <= MAX_SUBJECT
    assert len(summary.from_name) <= MAX_NAME
    assert len(summary.from_addr) <= MAX_ADDRESS
    assert len(summary.to_addrs) <= MAX_ADDRESS_LIST
    assert len(summary.cc_addrs) <= MAX_ADDRESS_LIST
    assert len(summary.message_id) <= MAX_MESSAGE_ID
    assert len(summary.in_reply_to) <= MAX_MESSAGE_ID
    assert len(summary.preview) <= MAX_PREVIEW
    assert re.fullmatch(r"[0-9a-f]{16}( [0-9a-f]{16}){0,12}", summary.thread_keys)
    for text in (summary.subject, summary.from_name, summary.from_addr, summary.to_addrs,
                 summary.cc_addrs, summary.message_id, summary.in_reply_to, summary.preview):
        assert not _CONTROL_OR_SURROGATE.search(text), repr(text)
        text.encode("utf-8")  # storable in every database


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes(caplog: pytest.LogCaptureFixture, raw: bytes) -> None:
    caplog.set_level(logging.ERROR)
    caplog.clear()
    check(summarize(raw), caplog)


NAMES = ["Subject", "From", "To", "Cc", "Date", "Message-ID", "In-Reply-To", "References",
         "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "X-Junk",
         "subject", "FROM", "content-type"]
FRAGMENTS = [
    "=?utf-8?B?7ZWc6riA?=", "=?ks_c_5601-1987?B?jGM=?=", "=?euc-kr?Q?=B0=A1?=", "=?", "?=",
    "=?utf-8?Q?", "=?x?B?", "multipart/mixed", "multipart/alternative", "multipart/digest",
    "multipart/related", "text/plain", "text/html", "application/pdf", "message/rfc822",
    "; boundary=b", '; boundary="b"', "; boundary=", "; charset=euc-kr", "; charset=utf-16",
    "; charset=iso-2022-kr", "; charset=zlib", "; name*0*=utf-8''%ED", "; name*1*=%95%9C",
    "; filename=\"a.pdf\"", "attachment", "inline", "base64", "quoted-printable", "8bit",
    "<a@b>", "<", ">", '"', "(", ")", ",", ";", ":", "@", "\\", " ", "\t", "\r\n ", "\n\t",
    "Tue, 25 Nov 2025 12:00:00 +0900", "2025-11-25", "+9999", "Re: ", "회신: ",
]
RAW_BYTES = [b"\xb0\xa1", b"\x8c\x63", b"\xed\x95\x9c", b"\x1b$)C\x0e!!\x0f", b"\xff", b"\x00",
             b"\x80", b"\xc3"]
BODY_LINES = [b"--b", b"--b--", b"--b  ", b"--bb", b"", b"text", b"<p>html</p>", b"<style>",
              b"<!--", b"7ZWc6riA", b"=ED=95=9C=", b"Content-Type: text/plain",
              b"Content-Type: multipart/mixed; boundary=b", b"Content-Transfer-Encoding: base64",
              b"Content-Disposition: attachment", "한글 본문".encode("cp949")]

header_value = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS).map(str.encode), st.sampled_from(RAW_BYTES)),
    max_size=12,
).map(b"".join)
header_line = st.builds(lambda name, value: name.encode() + b": " + value,
                        st.sampled_from(NAMES), header_value)
body = st.lists(st.sampled_from(BODY_LINES), max_size=40)


@FUZZ
@given(st.lists(header_line, max_size=15), body, st.sampled_from([b"\r\n", b"\n"]))
def test_header_soup(caplog: pytest.LogCaptureFixture, headers: list[bytes],
                     lines: list[bytes], newline: bytes) -> None:
    caplog.set_level(logging.ERROR)
    caplog.clear()
    raw = newline.join([*headers, b"", *lines])
    check(summarize(raw), caplog)


def serialize(tree: object) -> bytes:
    """A MIME entity from a nested (type, boundary, children) tree or a leaf tuple."""
    if isinstance(tree, tuple) and len(tree) == 3 and isinstance(tree[2], list):
        subtype, boundary, children = tree
        out = [f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"".encode(), b""]
        for child in children:
            out += [f"--{boundary}".encode(), serialize(child)]
        out.append(f"--{boundary}--".encode())
        return b"\r\n".join(out)
    assert isinstance(tree, tuple)
    content_type, encoding, disposition, payload = tree
    head = [f"Content-Type: {content_type}", f"Content-Transfer-Encoding: {encoding}"]
    if disposition:
        head.append(f"Content-Disposition: {disposition}")
    return "\r\n".join(head).encode() + b"\r\n\r\n" + bytes(payload)


leaf = st.tuples(
    st.sampled_from(["text/plain; charset=utf-8", "text/plain; charset=euc-kr", "text/html",
                     "image/png", "application/octet-stream", "message/rfc822", "text/plain",
                     "text/plain; charset=bogus", "multipart/mixed"]),
    st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode"]),
    st.sampled_from(["", "attachment", "inline", 'attachment; filename="가.txt"',
                     "inline; filename*=utf-8''%ED%95%9C"]),
    st.binary(max_size=200),
)
trees = st.recursive(
    leaf,
    lambda children: st.tuples(
        st.sampled_from(["mixed", "alternative", "related", "signed", "digest", "report"]),
        st.sampled_from(["b", "bb", "b1", "=_x", "b b"]),  # colliding and prefix boundaries
        st.lists(children, max_size=5),
    ),
    max_leaves=25,
)


@FUZZ
@given(trees)
def test_nested_multiparts(caplog: pytest.LogCaptureFixture, tree: object) -> None:
    caplog.set_level(logging.ERROR)
    caplog.clear()
    raw = b"Subject: nested\r\nMIME-Version: 1.0\r\n" + serialize(tree)
    check(summarize(raw), caplog)


text_body = st.text(alphabet=st.sampled_from("가나다라 똠뷁햏abc XYZ.,\n"), min_size=1,
                    max_size=400).filter(lambda text: text.strip() != "")


@FUZZ
@given(text_body, st.lists(st.sampled_from(["pdf", "png", "zip"]), max_size=3),
       st.sampled_from(["utf-8", "euc-kr"]), st.booleans())
def test_built_messages_match_their_structure(
    caplog: pytest.LogCaptureFixture, text: str, attachments: list[str], charset: str,
    with_html: bool,
) -> None:
    caplog.set_level(logging.ERROR)
    caplog.clear()
    msg = EmailMessage()
    msg["Subject"] = "구조 시험"
    msg.set_content(text, charset=charset if charset == "utf-8" else "utf-8")
    if charset == "euc-kr":
        msg.set_payload(text.encode("cp949"), charset="euc-kr")
    if with_html:
        msg.make_alternative()
        msg.add_alternative("<p>html</p>", subtype="html")
    for number, kind in enumerate(attachments):
        msg.add_attachment(b"data" * 50, maintype="application", subtype=kind,
                           filename=f"첨부{number}.{kind}")
    summary = summarize(msg.as_bytes())
    check(summary, caplog)
    assert summary.has_attachments is bool(attachments)
    expected = " ".join(text.split())
    assert expected.startswith(summary.preview)
    assert len(summary.preview) >= min(len(expected), 180)
