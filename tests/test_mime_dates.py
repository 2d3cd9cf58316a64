"""Date: headers, standard and broken, to Unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmail.mime.dates import parse_date

NOON_KST = 1764039600  # 2025-11-25 12:00:00 +0900 == 03:00:00 UTC


@pytest.mark.parametrize(
    "raw",
    [
        "Tue, 25 Nov 2025 12:00:00 +0900",
        b"Tue, 25 Nov 2025 12:00:00 +0900",
        "25 Nov 2025 12:00:00 +0900",
        "Tue, 25 Nov 2025 12:00:00 +0900 (KST)",
        "Tue, 25 Nov 2025 12:00:00 +0900 (대한민국 표준시)",
        "Tue,25 Nov 2025 12:00:00 +0900",
        "Tue 25 Nov 2025 12:00:00 +0900",
        "tue, 25 nov 2025 12:00:00 +0900",
        "Tuesday, 25 November 2025 12:00:00 +0900",
        "Tue, 25-Nov-2025 12:00:00 +0900",
        "Tue, 25 Nov 2025 12:00 +0900",
        "Tue, 25 Nov 25 12:00:00 +0900",
        "Tue, 25 Nov 2025 12:00:00 KST",
        "Tue, 25 Nov 2025 03:00:00 GMT",
        "Tue, 25 Nov 2025 03:00:00 UT",
        "Tue, 25 Nov 2025 03:00:00",
        "Mon, 24 Nov 2025 22:00:00 EST",
        "Tue, 25 Nov 2025 12:00:00.123 +0900",
        "Tue Nov 25 03:00:00 2025",
        "Nov 25 2025 12:00:00 +0900",
        "2025-11-25T12:00:00+09:00",
        "2025-11-25 03:00:00",
        "2025/11/25 12:00:00 +0900",
        "2025. 11. 25 12:00:00 +0900",
        "2025년 11월 25일 오후 12:00:00 +0900",
        "2025년 11월 25일 오전 3:00:00",
        "Tue, 25 Nov 2025 12:00:00 GMT+09:00",
        "  Tue, 25 Nov 2025 12:00:00 +0900  ",
    ],
)
def test_readable_dates(raw: str | bytes) -> None:
    assert parse_date(raw) == NOON_KST


@pytest.mark.parametrize(
    "raw",
    [
        "", "   ", "garbage", "Tue, 31 Feb 2025 12:00:00 +0900", "Tue, 25 Foo 2025 12:00:00",
        "Tue, 25 Nov 2025 25:00:00 +0900", "Tue, 25 Nov 2025 12:61:00 +0900",
        "Thu, 01 Jan 1970 00:00:00 +0000", "Wed, 31 Dec 1969 23:59:59 +0000",
        "Sat, 01 Jan 10000 00:00:00 +0000", "1 Jan 0001 00:00:00 +1400", "31",
        "12:00:00", "Nov", "\xff\xfe\x00", "99999999999999999999 Nov 2025",
    ],
)
def test_unusable_dates_are_zero(raw: str) -> None:
    assert parse_date(raw) == 0


def test_two_digit_years_follow_rfc5322() -> None:
    def unix(year: int) -> int:
        return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())

    assert parse_date("1 Jan 99 00:00:00 +0000") == unix(1999)
    assert parse_date("1 Jan 49 00:00:00 +0000") == unix(2049)


def test_leap_second_and_junk_offset() -> None:
    assert parse_date("Tue, 25 Nov 2025 02:59:60 +0000") == NOON_KST - 1
    assert parse_date("Tue, 25 Nov 2025 03:00:00 +9900") == NOON_KST  # offset ignored


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.timezones()))
def test_formatted_dates_roundtrip(moment: datetime) -> None:
    try:
        text = format_datetime(moment)
    except (ValueError, OverflowError):
        return  # a zone hypothesis invented that email.utils cannot write
    expected = int(moment.replace(microsecond=0).timestamp())
    offset = moment.utcoffset()
    if offset is not None and offset.seconds % 60:
        return  # RFC 5322 offsets are whole minutes
    assert parse_date(text) == expected


@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_never_raises(raw: str | bytes) -> None:
    assert parse_date(raw) >= 0
