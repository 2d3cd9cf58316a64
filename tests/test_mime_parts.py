"""The boundary scanner agrees with the standard library's parser on where parts are."""

from __future__ import annotations

import email
import email.policy
from email.message import Message

from hypothesis import given
from hypothesis import strategies as st

from nmail.mime.fields import read_header_block
from nmail.mime.parts import PART_FIELDS, iter_parts

line_text = st.text(alphabet="abc xyz-=.:;", max_size=30).filter(lambda s: not s.startswith("--"))
payload = st.lists(line_text, max_size=5)
leaf = st.tuples(st.sampled_from(["text/plain", "text/html", "application/pdf", "image/png"]),
                 payload)


def tree(depth: int) -> st.SearchStrategy[object]:
    if depth == 0:
        return leaf
    return st.one_of(
        leaf,
        st.tuples(st.sampled_from(["mixed", "alternative", "related"]),
                  st.lists(tree(depth - 1), min_size=1, max_size=4)),
    )


def serialize(node: object, newline: str, counter: list[int]) -> str:
    assert isinstance(node, tuple)
    kind, body = node
    if isinstance(body, list) and body and isinstance(body[0], tuple):
        counter[0] += 1
        boundary = f"=_b{counter[0]}"
        out = [f'Content-Type: multipart/{kind}; boundary="{boundary}"', "", "preamble"]
        for child in body:
            out += [f"--{boundary}", serialize(child, newline, counter)]
        out += [f"--{boundary}--", "epilogue"]
        return newline.join(out)
    return newline.join([f"Content-Type: {kind}", "", *body])


def stdlib_leaves(message: Message) -> list[str]:
    return [str(part.get_payload()) for part in message.walk() if not part.is_multipart()]


@given(tree(3), st.sampled_from(["\r\n", "\n"]))
def test_leaf_bodies_match_the_stdlib(node: object, newline: str) -> None:
    raw = ("Subject: t" + newline + serialize(node, newline, [0])).encode()
    block = read_header_block(raw, PART_FIELDS)
    ours = [raw[part.start:part.end].decode() for part in iter_parts(
        raw, block.fields, block.body_start, len(raw))]
    theirs = stdlib_leaves(email.message_from_bytes(raw, policy=email.policy.compat32))
    assert ours == theirs


def test_empty_parts_and_no_preamble() -> None:
    raw = (b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\n--b\r\n\r\nsecond\r\n--b  \r\n\r\n--b--\r\n")
    block = read_header_block(raw, PART_FIELDS)
    bodies = [raw[p.start:p.end] for p in iter_parts(raw, block.fields, block.body_start,
                                                      len(raw))]
    assert bodies == [b"", b"second", b""]


def test_longer_boundaries_and_indented_delimiters_are_not_delimiters() -> None:
    raw = (b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\n'
           b"--bb is text\n --b is text\n--b-- closes\nepilogue --b\n")
    block = read_header_block(raw, PART_FIELDS)
    bodies = [raw[p.start:p.end] for p in iter_parts(raw, block.fields, block.body_start,
                                                      len(raw))]
    assert bodies == [b"--bb is text\n --b is text"]
