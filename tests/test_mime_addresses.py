"""Address lists: names decoded, junk tolerated, never an exception."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmail.mime.addresses import MAX_ADDRESSES
from nmail.mime.headers import format_addresses, parse_addresses


def b_word(text: str, label: str = "UTF-8", codec: str = "utf-8") -> str:
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("kim@example.kr", [("", "kim@example.kr")]),
        ("<kim@example.kr>", [("", "kim@example.kr")]),
        ("Kim Minsu <kim@example.kr>", [("Kim Minsu", "kim@example.kr")]),
        ('"Kim, Minsu" <kim@example.kr>', [("Kim, Minsu", "kim@example.kr")]),
        ('"Kim \\"The Boss\\" Minsu" <k@x.kr>', [('Kim "The Boss" Minsu', "k@x.kr")]),
        ("kim@example.kr (Kim Minsu)", [("Kim Minsu", "kim@example.kr")]),
        ("Kim (Sales (Seoul)) <k@x.kr>", [("Kim", "k@x.kr")]),
        ("a@x.kr, B <b@x.kr>,, ,c@x.kr", [("", "a@x.kr"), ("B", "b@x.kr"), ("", "c@x.kr")]),
        ("undisclosed-recipients:;", []),
        ("team: a@x.kr, Bee <b@x.kr>;, c@x.kr",
         [("", "a@x.kr"), ("Bee", "b@x.kr"), ("", "c@x.kr")]),
        ("Kim <kim @ example.kr>", [("Kim", "kim@example.kr")]),
        ("<@relay.kr,@other.kr:kim@example.kr>", [("", "kim@example.kr")]),
        ("Kim kim@example.kr", [("Kim", "kim@example.kr")]),  # brackets forgotten
        ("Kim <kim@example.kr", [("Kim", "kim@example.kr")]),  # never closed
        ("<<kim@example.kr>>", [("", "kim@example.kr")]),
        ('"unterminated <kim@example.kr>', [("unterminated", "kim@example.kr")]),
        ("postmaster", [("", "postmaster")]),
        ("", []),
        ("   ", []),
    ],
)
def test_shapes(raw: str, expected: list[tuple[str, str]]) -> None:
    assert parse_addresses(raw) == expected


def test_encoded_word_names() -> None:
    raw = f"{b_word('김철수')} <kim@x.kr>, {b_word('이영희', 'ks_c_5601-1987', 'cp949')} <lee@x.kr>"
    assert parse_addresses(raw) == [("김철수", "kim@x.kr"), ("이영희", "lee@x.kr")]


def test_encoded_word_inside_quotes_is_decoded() -> None:
    assert parse_addresses(f'"{b_word("홍길동")}" <hong@x.kr>') == [("홍길동", "hong@x.kr")]


def test_an_encoded_comma_does_not_split_the_list() -> None:
    raw = f"{b_word('Kim, Minsu')} <kim@x.kr>, lee@x.kr"
    assert parse_addresses(raw) == [("Kim, Minsu", "kim@x.kr"), ("", "lee@x.kr")]


def test_raw_8bit_names() -> None:
    assert parse_addresses("홍길동 <hong@x.kr>".encode("cp949")) == [("홍길동", "hong@x.kr")]
    assert parse_addresses('"똠방" <d@x.kr>'.encode()) == [("똠방", "d@x.kr")]


def test_folded_list() -> None:
    raw = b"Kim <kim@x.kr>,\r\n\tLee\r\n <lee@x.kr>"
    assert parse_addresses(raw) == [("Kim", "kim@x.kr"), ("Lee", "lee@x.kr")]


def test_too_many_addresses_are_cut() -> None:
    raw = ", ".join(f"u{n}@x.kr" for n in range(MAX_ADDRESSES + 50))
    assert len(parse_addresses(raw)) == MAX_ADDRESSES


def test_format_quotes_names_with_specials() -> None:
    pairs = [("Kim, Minsu", "kim@x.kr"), ("이영희", "lee@x.kr"), ("", "c@x.kr"), ('a"b', "d@x")]
    assert format_addresses(pairs) == (
        '"Kim, Minsu" <kim@x.kr>, 이영희 <lee@x.kr>, c@x.kr, "a\\"b" <d@x>')
    assert parse_addresses(format_addresses(pairs)) == pairs


atoms = st.text(alphabet="abcXYZ09.-_", min_size=1, max_size=8)
names = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                max_size=20).map(lambda name: " ".join(name.split()))


@given(st.lists(st.tuples(names, st.builds("{}@{}.kr".format, atoms, atoms)), max_size=8))
def test_format_then_parse_roundtrips(pairs: list[tuple[str, str]]) -> None:
    cleaned = [(name.strip("\"' "), address) for name, address in pairs]
    cleaned = [(name, address) for name, address in cleaned if "=?" not in name]
    assert parse_addresses(format_addresses(cleaned)) == cleaned


@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_never_raises(raw: bytes | str) -> None:
    for name, address in parse_addresses(raw):
        assert "\n" not in name and "\n" not in address


junk = st.lists(st.sampled_from(['"', "<", ">", "(", ")", ",", ";", ":", "@", "\\", " ",
                                 "=?utf-8?B?6rmA?=", "a", "kim", "x.kr", "\r\n "]),
                max_size=60).map("".join)


@given(junk)
def test_junk_soup_never_raises(raw: str) -> None:
    assert isinstance(parse_addresses(raw), list)
