"""Reading every From:/Sender: address the way a reader's client might show it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.mime.originators import MAX_HEADER_BLOCK, originators

Read = tuple[tuple[str, ...], str | None, str | None]


def read(*headers: bytes, body: bytes = b"hi\r\n") -> Read:
    found = originators(b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body)
    return found.addresses, found.problem, found.author


def test_plain_and_display_names() -> None:
    assert read(b"From: Bob <bob@x.test>") == (("bob@x.test",), None, "bob@x.test")
    addresses, problem, author = read(b'From: "bob@x.test" <bob@x.test>', b"Sender: s@x.test")
    assert (set(addresses), problem, author) == ({"bob@x.test", "s@x.test"}, None, "bob@x.test")


@pytest.mark.parametrize(
    ("header", "hidden"),
    [
        (b'From: "ceo@y.test" <bob@x.test>', "ceo@y.test"),
        (b"From: =?utf-8?q?ceo=40y=2Etest?= <bob@x.test>", "ceo@y.test"),
        (b"From: =?euc-kr?b?Y2VvQHkudGVzdA==?= <bob@x.test>", "ceo@y.test"),
        (b"From: bob@x.test (ceo@y.test)", "ceo@y.test"),
        (b'From: "ceo\xef\xbc\xa0y.test" <bob@x.test>', "ceo@y.test"),  # full-width @
        (b"From: Bob\r\n <bob@x.test>,\r\n\tceo@y.test", "ceo@y.test"),  # folded
    ],
)
def test_addresses_hidden_in_names_and_comments_are_found(header: bytes, hidden: str) -> None:
    addresses, problem, author = read(header)
    assert problem is None and author == "bob@x.test"
    assert hidden in addresses


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ((b"To: a@x.test",), "no From"),
        ((b"From: a@x.test", b"From: b@x.test"), "more than one From"),
        ((b"FROM : a@x.test", b"from: b@x.test"), "more than one From"),
        ((b"From: a@x.test", b"From\x00: b@x.test"), "more than one From"),
        ((b"From: a@x.test", b"\x0bFrom: b@x.test"), "more than one From"),
        ((b"\xef\xbb\xbfFrom: b@x.test", b"From: a@x.test"), "more than one From"),  # a BOM
        ((b"From: a@x.test", b"Sender: b@x.test", b"Sen der: c@x.test"), "more than one Sender"),
        ((b"From: a@x.test", b"Sender: b@x.test", b"Sender: c@x.test"), "more than one Sender"),
        ((b"From: undisclosed:;",), "no address"),
        ((b"From: Bob <bob@x.test",), "unambiguously"),
        ((b"From: a@x.test@y.test",), "unambiguously"),
        ((b"From: \xff\xfe@x.test",), "not UTF-8"),
        ((b"From:",), "no address"),
    ],
)
def test_what_cannot_be_read_safely_is_a_problem(headers: tuple[bytes, ...], says: str) -> None:
    _, problem, _ = read(*headers)
    assert problem is not None and says in problem


def test_only_the_header_block_counts() -> None:
    addresses, problem, _ = read(b"From: a@x.test", body=b"From: ceo@y.test\r\n")
    assert (addresses, problem) == (("a@x.test",), None)
    assert originators(b"\r\nFrom: a@x.test\r\n").problem is not None  # empty header block


def test_a_field_past_the_part_read_cannot_hide() -> None:
    padding = b"".join(b"X-Pad: %d %s\r\n" % (i, b"a" * 900) for i in range(300))
    assert len(padding) > MAX_HEADER_BLOCK
    found = originators(b"From: a@x.test\r\n" + padding + b"From: ceo@y.test\r\n\r\nhi\r\n")
    assert found.problem is not None and "longer than" in found.problem
    # a long header that ends inside the part read is fine, and so is a long body
    short = padding[: padding.index(b"X-Pad: 100 ")]
    assert originators(b"From: a@x.test\r\n" + short + b"\r\n" + padding).author == "a@x.test"


@given(st.binary(max_size=400), st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_input_gives_addresses_or_a_problem(raw: bytes, text: str) -> None:
    for content in (b"From: " + raw + b"\r\n\r\n", ("From: " + text + "\r\n\r\n").encode()):
        found = originators(content)
        assert (found.problem is None) == (found.author is not None)
