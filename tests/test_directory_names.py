"""Normal forms and refusals of domains, local parts, user ids, addresses, sizes."""

from __future__ import annotations

import pytest

from nmail.directory.errors import DirectoryError, InvalidName
from nmail.directory.names import (
    comparable_address,
    display_domain,
    is_userid,
    normalize_address,
    normalize_alias_name,
    normalize_domain,
    normalize_local_part,
    normalize_sender_pattern,
    normalize_userid,
)
from nmail.directory.sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("mail-1.example.co.kr", "mail-1.example.co.kr"),
        ("한국.kr", "xn--3e0b707e.kr"),
        ("메일.한국", "xn--h32bq4v.xn--3e0b707e"),
        ("XN--3E0B707E.kr", "xn--3e0b707e.kr"),
        ("ｅｘａｍｐｌｅ。com", "example.com"),  # full-width letters and ideographic stop
        ("Bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_domains_normalize_to_lower_case_ascii(given: str, expected: str) -> None:
    assert normalize_domain(given) == expected


def test_display_domain_gives_back_unicode() -> None:
    assert display_domain("xn--3e0b707e.kr") == "한국.kr"
    assert display_domain("example.com") == "example.com"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("", "empty"),
        ("localhost", "at least one dot"),
        ("a..b.com", "empty label"),
        (".example.com", "empty label"),
        ("-a.example.com", "hyphens"),
        ("a-.example.com", "hyphens"),
        ("under_score.com", "letters, digits"),
        ("ex ample.com", "letters, digits"),
        ("exa$mple.com", "letters, digits"),
        ("1.2.3.4", "all digits"),
        ("[127.0.0.1]", "address literals"),
        ("ab--cd.com", "reserved hyphens"),
        ("xn--zz.com", "punycode"),
        ("a" * 64 + ".com", "longer than 63"),
        (".".join(["a" * 60] * 5), "longer than 253"),
    ],
)
def test_bad_domains_are_refused_with_the_reason(given: str, why: str) -> None:
    with pytest.raises(InvalidName) as info:
        normalize_domain(given)
    message = str(info.value)
    assert why in message
    assert "\n" not in message
    assert isinstance(info.value, DirectoryError)
    assert isinstance(info.value, ValueError)


def test_single_label_domain_allowed_when_not_required() -> None:
    assert normalize_domain("LocalHost", require_dot=False) == "localhost"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("John.Doe", "john.doe"),
        ("a+tag", "a+tag"),
        ("!#$%&'*+-/=?^_`{|}~", "!#$%&'*+-/=?^_`{|}~"),
        ('"john.doe"', "john.doe"),  # quoting a dot-atom changes nothing
        ('"John Doe"', '"john doe"'),
        ('"a\\"b"', '"a\\"b"'),
        ("Ünïcode", "ünïcode"),  # RFC 6531
    ],
)
def test_local_parts(given: str, expected: str) -> None:
    assert normalize_local_part(given) == expected


@pytest.mark.parametrize(
    "given",
    ["", "a..b", ".a", "a.", "a b", "a@b", "a,b", '"unterminated', '""', '"a\x01b"', "a" * 65,
     "가" * 22],
)
def test_bad_local_parts(given: str) -> None:
    with pytest.raises(InvalidName):
        normalize_local_part(given)


def test_addresses() -> None:
    assert normalize_address("Bob@Example.COM") == "bob@example.com"
    assert normalize_address("홍길동@한국.kr") == "홍길동@xn--3e0b707e.kr"
    assert normalize_address('"a@b"@example.com') == '"a@b"@example.com'
    assert normalize_address("root@localhost") == "root@localhost"
    with pytest.raises(InvalidName, match="at least one dot"):
        normalize_address("root@localhost", require_dot=True)


@pytest.mark.parametrize(
    "given", ["", "bob", "@example.com", "bob@", "bob@@example.com", "b ob@example.com",
              "bob@exa mple.com", "bob@[1.2.3.4]", "a" * 64 + "@" + "b" * 60 + "." + "c" * 60
              + "." + "d" * 60 + "." + "e" * 10 + ".com"],
)
def test_bad_addresses(given: str) -> None:
    with pytest.raises(InvalidName):
        normalize_address(given)


def test_userids_are_plain_and_lower_case() -> None:
    assert normalize_userid("Hong.Gildong") == "hong.gildong"
    assert normalize_userid("a_b-c9") == "a_b-c9"
    assert is_userid("bob") and not is_userid('"bob smith"') and not is_userid("a/b")
    for bad in ["", ".bob", "bob.", "bo..b", "-bob", "b/ob", "b+ob", "홍길동", "a" * 65, "b ob"]:
        with pytest.raises(InvalidName):
            normalize_userid(bad)


def test_alias_names_are_ascii_dot_atoms() -> None:
    assert normalize_alias_name("Sales+EU") == "sales+eu"
    for bad in ['"a b"', "영업", "a..b"]:
        with pytest.raises(InvalidName):
            normalize_alias_name(bad)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Me@Bücher.Test.", "me@xn--bcher-kva.test"),
        ("me@bücher\u3002test", "me@xn--bcher-kva.test"),
        ('"Bob"@test.local', "bob@test.local"),
        ("Bob@[127.0.0.1]", "bob@[127.0.0.1]"),  # no normal form: lower case as written
        ("", ""),  # the null sender
    ],
)
def test_comparable_address(given: str, expected: str) -> None:
    assert comparable_address(given) == expected


def test_sender_patterns() -> None:
    assert normalize_sender_pattern("@Spam.Example") == "@spam.example"
    assert normalize_sender_pattern("Bad@Spam.Example") == "bad@spam.example"
    for bad in ["@", "@localhost", "nobody", "x@y"]:
        with pytest.raises(InvalidName):
            normalize_sender_pattern(bad)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("0", 0), ("1048576", 1048576), ("512K", 512 * 1024), ("100M", 100 << 20),
     ("100m", 100 << 20), ("2G", 2 << 30), ("1.5G", 3 << 29), ("100MB", 100 << 20),
     ("100 MiB", 100 << 20), ("unlimited", 0)],
)
def test_sizes(given: str, expected: int) -> None:
    assert parse_size(given) == expected


@pytest.mark.parametrize("given", ["", "-1", "10X", "M", "1.2.3G", "ten", "1" * 30])
def test_bad_sizes(given: str) -> None:
    with pytest.raises(InvalidName):
        parse_size(given)


def test_format_size() -> None:
    assert format_size(0) == "unlimited"
    assert format_size(100 << 20) == "100M"
    assert format_size(3 << 29) == "1.5G"
    assert format_size(1000) == "1000"
