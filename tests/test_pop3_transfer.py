"""RETR/TOP encoding: dot-stuffing, line ends and TOP cuts, whatever the chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.protocols.pop3.transfer import MessageEncoder, encode_whole


def reference(message: bytes, body_lines: int | None = None) -> bytes:
    """The expected wire form, computed line by line on the whole message."""
    data = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    pieces = data.split(b"\n")
    lines = [p + b"\n" for p in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    if body_lines is not None:
        kept: list[bytes] = []
        in_headers = True
        left = body_lines
        for line in lines:
            if in_headers:
                kept.append(line)
                if line in (b"\r\n", b"\n", b"\r"):
                    in_headers = False
            elif left > 0:
                kept.append(line)
                left -= 1
            else:
                break
        lines = kept
    out = b"".join(b"." + line if line.startswith(b".") else line for line in lines)
    if out.endswith(b"\r"):
        out += b"\n"
    elif out and not out.endswith(b"\n"):
        out += b"\r\n"
    return out + b".\r\n"


def encode(
    message: bytes, cuts: list[int], body_lines: int | None = None, fix: bool = True
) -> bytes:
    encoder = MessageEncoder(body_lines, fix_bare_lf=fix)
    out = []
    start = 0
    for cut in [*sorted(set(cuts)), len(message)]:
        if cut <= start:
            continue
        out.append(encoder.feed(message[start:cut]))
        start = cut
        if encoder.done:
            break
    out.append(encoder.finish())
    return b"".join(out)


def test_leading_dot_split_across_chunks() -> None:
    message = b"Subject: x\r\n\r\nline\r\n.dot line\r\n..two\r\n"
    for cut in range(len(message) + 1):
        assert encode(message, [cut]) == (
            b"Subject: x\r\n\r\nline\r\n..dot line\r\n...two\r\n.\r\n"
        )


def test_crlf_split_across_chunks_is_not_doubled() -> None:
    message = b"a\r\nb\r\n"
    assert encode(message, [2]) == b"a\r\nb\r\n.\r\n"


def test_missing_final_line_end_is_added() -> None:
    assert encode(b"Subject: x\r\n\r\nno newline", []) == b"Subject: x\r\n\r\nno newline\r\n.\r\n"
    assert encode(b"ends with cr\r", []) == b"ends with cr\r\n.\r\n"


def test_empty_message_is_just_the_terminator() -> None:
    assert encode(b"", []) == b".\r\n"


def test_bare_lf_is_converted() -> None:
    assert encode(b"a: b\n\n.x\ny\n", [3]) == b"a: b\r\n\r\n..x\r\ny\r\n.\r\n"


def test_bare_lf_is_left_alone_unless_asked() -> None:
    # Still byte-stuffed after the LF, and a line end added to the last line.
    assert encode(b"a\n.b\nc", [], fix=False) == b"a\n..b\nc\r\n.\r\n"


def test_top_without_blank_line_sends_everything() -> None:
    assert encode(b"a: b\r\nc: d\r\n", [], 0) == b"a: b\r\nc: d\r\n.\r\n"


def test_top_stops_reading_when_enough() -> None:
    encoder = MessageEncoder(1)
    assert encoder.feed(b"a: b\r\n\r\none\r\ntwo\r\n") == b"a: b\r\n\r\none\r\n"
    assert encoder.done
    assert encoder.feed(b"more\r\n") == b""
    assert encoder.finish() == b".\r\n"


_bytes = st.lists(
    st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b"Subject: x", b" "]),
    max_size=40,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(message=_bytes, cuts=st.lists(st.integers(0, 200), max_size=8))
def test_any_chunking_gives_the_reference_encoding(message: bytes, cuts: list[int]) -> None:
    assert encode(message, cuts) == reference(message)


@settings(max_examples=400, deadline=None)
@given(
    message=_bytes,
    cuts=st.lists(st.integers(0, 200), max_size=8),
    lines=st.integers(0, 5),
)
def test_top_with_any_chunking_gives_the_reference(
    message: bytes, cuts: list[int], lines: int
) -> None:
    assert encode(message, cuts, lines) == reference(message, lines)


_crlf_bytes = st.lists(
    st.sampled_from([b"\r\n", b"\r", b".", b"..", b"a", b"Subject: x", b" "]),
    max_size=40,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(
    message=_crlf_bytes,
    cuts=st.lists(st.integers(0, 200), max_size=8),
    lines=st.one_of(st.none(), st.integers(0, 5)),
)
def test_crlf_files_without_repair_give_the_reference(
    message: bytes, cuts: list[int], lines: int | None
) -> None:
    """The server's mode: files are CRLF already, nothing to repair."""
    assert encode(message, cuts, lines, fix=False) == reference(message, lines)


@settings(max_examples=400, deadline=None)
@given(message=_crlf_bytes)
def test_encode_whole_matches_the_encoder(message: bytes) -> None:
    assert encode_whole(message) == reference(message)
