"""Broken bounces: "unknown" or the best guess, never an exception, in bounded time.

Truncated files, boundaries that do not match, 8-bit text in any charset,
a report without its delivery-status part, 10 MB of text, deep nesting,
thousands of recipients and random bytes. The time bound is the test
timeout (speed itself is measured in bench/bounce.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmail.bounce import catalogue, categories
from nmail.bounce.analysis import BounceAnalysis, analyze

pytestmark = pytest.mark.timeout(60)

CORPUS = Path(__file__).parent / "data" / "bounces"
EXPECTED: dict[str, dict[str, object]] = json.loads((CORPUS / "expected.json").read_text())
IDS = set(catalogue.category_ids())


def checked(raw: bytes) -> BounceAnalysis | None:
    """analyze(), plus the invariants every answer must keep."""
    result = analyze(raw)
    if result is not None:
        assert result.category in IDS
        for rcpt in result.recipients:
            assert rcpt.category in IDS and "@" in rcpt.address
            assert len(rcpt.diagnostic) <= 1000
        assert len(result.text) <= 4000
    return result


DAEMON_HEAD = (
    b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
    b"To: kim@nmail-demo.kr\r\nSubject: Undelivered Mail Returned to Sender\r\n"
)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truncated_anywhere(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    for cut in range(0, len(raw), max(1, len(raw) // 23)):
        result = checked(raw[:cut])
        if result is not None and cut >= len(raw) * 0.9 and result.recipients:
            # Most of the bounce is there: the guess is right or "unknown".
            assert result.category in (EXPECTED[name]["category"], categories.UNKNOWN)


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED) if "boundary=" in
                                  (CORPUS / n).read_text("latin-1")])
def test_boundaries_that_do_not_match(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    found = re.search(rb'boundary="([^"]+)"', raw)
    assert found is not None
    boundary = found.group(1)
    broken = raw.replace(found.group(0), b'boundary="something-else"', 1)
    result = checked(broken)
    # The whole body is read as text: the same answer, or "unknown".
    assert result is not None
    assert result.category in (EXPECTED[name]["category"], categories.UNKNOWN)
    # No closing delimiter at all: parts run to the end.
    checked(raw.replace(b"--" + boundary + b"--", b"", 1))


@pytest.mark.parametrize("charset", ["cp949", "euc-kr", "utf-8", "iso2022_kr", "latin-1",
                                     "utf-16"])
@pytest.mark.parametrize("label", [b"", b"; charset=us-ascii", b"; charset=ks_c_5601-1987",
                                   b"; charset=nonsense"])
def test_8bit_text_in_any_charset_and_any_label(charset: str, label: bytes) -> None:
    words = "받는 사람: sleep@hanmail.net\n실패 원인: 받는 사람의 메일함 용량이 초과되었습니다.\n"
    try:
        body = words.encode(charset)
    except UnicodeEncodeError:
        body = words.encode("utf-8")
    raw = DAEMON_HEAD + b"Content-Type: text/plain" + label + b"\r\n\r\n" + body
    result = checked(raw)
    assert result is not None
    if charset in ("cp949", "euc-kr", "utf-8") and label != b"; charset=nonsense":
        assert [r.address for r in result.recipients] == ["sleep@hanmail.net"]
        assert result.category == categories.MAILBOX_FULL


def test_raw_8bit_headers_and_undecodable_bytes() -> None:
    raw = (b"From: \xb8\xde\xc0\xcf \xb9\xdf\xbc\xdb <MAILER-DAEMON@daum.net>\r\n"
           b"Subject: \xb9\xdd\xbc\xdb \xff\xfe\r\nContent-Type: text/plain\r\n\r\n"
           b"<u@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1 \xff\xfe\x80 "
           b"User unknown\r\n")
    result = checked(raw)
    assert result is not None and result.category == categories.NO_SUCH_USER


def test_a_report_without_its_delivery_status_part() -> None:
    raw = (DAEMON_HEAD + b'Content-Type: multipart/report; report-type=delivery-status; '
           b'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
           b"<gone@example.org>: host mx.example.org[192.0.2.9] said: 552 5.2.2 Mailbox full\r\n"
           b"\r\n--b--\r\n")
    result = checked(raw)
    assert result is not None and result.source == "text"
    assert result.category == categories.MAILBOX_FULL
    empty = DAEMON_HEAD + (b'Content-Type: multipart/report; report-type=delivery-status; '
                           b'boundary="b"\r\n\r\n--b--\r\n')
    nothing = checked(empty)
    assert nothing is not None and nothing.category == categories.UNKNOWN


def test_a_delivery_status_part_that_is_garbage() -> None:
    raw = (DAEMON_HEAD + b'Content-Type: multipart/report; report-type=delivery-status; '
           b'boundary="b"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n'
           + b"Final-Recipient: \r\nAction: \xff\xfe\r\nStatus: 9.9.9.9.9\r\n" * 500
           + b":::\r\n\r\n--b--\r\n")
    result = checked(raw)
    assert result is not None


def test_ten_megabytes_of_text() -> None:
    line = b"This line repeats to fill ten megabytes of a returned message. 550 x\r\n"
    raw = (DAEMON_HEAD + b"Content-Type: text/plain\r\n\r\n"
           + b"<big@example.com>: host mx.example.com[192.0.2.1] said: 552 5.3.4 Message "
           b"size exceeds fixed limit\r\n\r\n" + line * (10 * 1024 * 1024 // len(line)))
    assert len(raw) > 10 * 1024 * 1024
    result = checked(raw)
    assert result is not None and result.category == categories.TOO_BIG
    no_newlines = DAEMON_HEAD + b"\r\n" + b"x@y.z " * (2 * 1024 * 1024)
    checked(no_newlines)
    one_header = b"Subject: " + b"a" * (10 * 1024 * 1024) + b"\r\n\r\nbody"
    assert checked(one_header) is None


def test_deep_nesting() -> None:
    depth = 2000
    head = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n'.encode()
        for n in range(depth)
    )
    inner = (b"Content-Type: text/plain\r\n\r\n<deep@example.com>: host mx.example.com"
             b"[192.0.2.1] said: 550 5.1.1 User unknown\r\n")
    tail = b"".join(f"\r\n--b{n}--\r\n".encode() for n in reversed(range(depth)))
    result = checked(DAEMON_HEAD + head + inner + tail)
    assert result is not None  # the parts beyond the depth limit are not read
    nested_reports = DAEMON_HEAD + b"".join(
        b'Content-Type: message/rfc822\r\n\r\n' for _ in range(5000)) + inner
    checked(nested_reports)


def test_thousands_of_recipients() -> None:
    lines = b"".join(f"<user{n}@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1 "
                     f"User unknown\r\n\r\n".encode() for n in range(5000))
    result = checked(DAEMON_HEAD + b"\r\n" + lines)
    assert result is not None and 0 < len(result.recipients) <= 100
    dsn = b"".join(f"\r\nFinal-Recipient: rfc822; u{n}@example.com\r\nAction: failed\r\n"
                   f"Status: 5.1.1\r\n".encode() for n in range(5000))
    raw = (DAEMON_HEAD + b'Content-Type: multipart/report; report-type=delivery-status; '
           b'boundary="b"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n'
           b"Reporting-MTA: dns; mx.example.com\r\n" + dsn + b"\r\n--b--\r\n")
    many = checked(raw)
    assert many is not None and 0 < len(many.recipients) <= 200


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise(data: bytes) -> None:
    checked(data)
    checked(DAEMON_HEAD + data)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(EXPECTED)), st.integers(0, 10**6), st.binary(min_size=1,
                                                                          max_size=64))
def test_corpus_with_bytes_spliced_in_never_raises(name: str, where: int, junk: bytes) -> None:
    raw = (CORPUS / name).read_bytes()
    at = where % len(raw)
    checked(raw[:at] + junk + raw[at:])
