"""Reading account CSV files: encodings, headers, per-line problems."""

from __future__ import annotations

import codecs

import pytest

from nmail.directory.account_csv import AccountLine, BadLine, decode_csv, read_accounts_csv
from nmail.directory.errors import InvalidName

KOREAN = "domain,name,userid,password\nexample.com,홍길동,hong,비밀번호1234\n"


def test_decode_utf8_with_and_without_bom() -> None:
    assert decode_csv(KOREAN.encode("utf-8")) == (KOREAN, "UTF-8")
    assert decode_csv(codecs.BOM_UTF8 + KOREAN.encode("utf-8")) == (KOREAN, "UTF-8")


def test_decode_cp949_and_euc_kr() -> None:
    assert decode_csv(KOREAN.encode("cp949")) == (KOREAN, "CP949")
    assert decode_csv(KOREAN.encode("euc-kr")) == (KOREAN, "CP949")
    # 똠 exists in CP949 only (not in EUC-KR's KS X 1001 set).
    text = "domain,name,userid,password\nexample.com,김똠방,kim,password12\n"
    assert decode_csv(text.encode("cp949"))[0] == text


def test_decode_utf16() -> None:
    assert decode_csv(KOREAN.encode("utf-16")) == (KOREAN, "UTF-16")


def test_decode_refuses_binary() -> None:
    with pytest.raises(InvalidName, match="not text"):
        decode_csv(b"\xff\xff\x00\x81\x00garbage\xfe")


def test_lines_in_any_column_order_with_optional_columns() -> None:
    text = (
        "UserID, Password, Domain, Name, Admin, Quota\n"
        "bob, pw with space , example.com, Bob Smith ,ADMIN,100M\n"
        "\n"
        "ann,secret-pass,example.com,\"Ann, Jr.\",,\n"
    )
    lines, header_line = read_accounts_csv(text)
    assert header_line == 1
    assert lines == [
        AccountLine(2, "example.com", "Bob Smith", "bob", "pw with space ", True, 100 << 20),
        AccountLine(4, "example.com", "Ann, Jr.", "ann", "secret-pass", False, 0),
    ]


def test_bad_lines_are_reported_with_their_numbers() -> None:
    text = (
        "domain,name,userid,password,admin,quota\n"
        "example.com,Bob,bob,password1\n"
        "example.com,Ann,ann,password1,maybe,\n"
        "example.com,Cy,cy,password1,,lots\n"
        "example.com,Di,di,password1,no,1G\n"
    )
    lines, _ = read_accounts_csv(text)
    assert lines[0] == BadLine(2, "expected 6 fields, found 4")
    assert isinstance(lines[1], BadLine) and lines[1].line == 3
    assert "admin column" in lines[1].reason
    assert isinstance(lines[2], BadLine) and lines[2].line == 4
    assert "quota column" in lines[2].reason
    assert lines[3] == AccountLine(5, "example.com", "Di", "di", "password1", False, 1 << 30)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("domain,name,userid", "missing column 'password'"),
        ("domain,name,user,password", "unknown column 'user'"),
        ("domain,name,userid,password,password", "appears twice"),
        ("이름,도메인", "unknown column"),
    ],
)
def test_bad_headers(header: str, why: str) -> None:
    with pytest.raises(InvalidName, match=why):
        read_accounts_csv(header + "\nexample.com,Bob,bob,password1\n")


def test_empty_file() -> None:
    with pytest.raises(InvalidName, match="empty"):
        read_accounts_csv("\n\n")
