"""The hot path's shortcuts give exactly what the plain way of computing the same thing gives.

Each test holds the straightforward version (a regular expression
substitution, datetime arithmetic, one compiled pattern per boundary) and
checks the shortcut against it, most of all on the inputs that must leave the
shortcut: folds, tabs and other controls, odd whitespace, near-miss delimiters.
"""

from __future__ import annotations

import binascii
import codecs
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nmail.mime import parts
from nmail.mime.charsets import decode_bytes, decode_bytes_with_codec
from nmail.mime.dates import _to_unix
from nmail.mime.encoded_words import decode_encoded_words
from nmail.mime.fields import read_header_block
from nmail.mime.headers import decode_header_value
from nmail.mime.parts import PART_FIELDS, iter_parts
from nmail.mime.preview import _collapse_all, body_preview, transfer_decode
from nmail.mime.raw_header import _unfold, clean_text, header_text
from nmail.mime.summary import summarize
from nmail.mime.threads import first_message_id, message_ids

_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NOT_SHOWN = re.compile(
    r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u034f\u200b-\u200f\u2060\ufeff]"
)

folding = st.lists(st.sampled_from([b"a", b"\r", b"\n", b" ", b"\t", b"\r\n ", b"\n\t",
                                    b"\n\r\n ", b"\x00", b"\x1b", b"\x7f", b"\xb0\xa1",
                                    b"\xc2\x85", b"=?"]), max_size=20).map(b"".join)


@given(folding)
def test_unfolding_is_the_substitution(raw: bytes) -> None:
    assert _unfold(raw) == _FOLD.sub(b"", raw)


@given(folding)
def test_header_text_is_unfolded_and_decoded_with_controls_as_spaces(raw: bytes) -> None:
    unfolded = _FOLD.sub(b"", raw)
    if unfolded.isascii() and b"\x1b" not in unfolded:
        assert header_text(raw) == _CONTROLS.sub(" ", unfolded.decode("ascii"))
    else:
        assert header_text(raw) == _CONTROLS.sub(" ", decode_bytes(unfolded, None))


@pytest.mark.parametrize("text", ["plain", "tab\tbetween", "nul\x00here", "del\x7f", "c1\x85x",
                                  "fold\r\n there", "한글\t제목", "\t\x9f\t", ""])
def test_controls_become_spaces(text: str) -> None:
    assert clean_text(text) == _CONTROLS.sub(" ", text).strip()
    assert header_text(text) == _CONTROLS.sub(" ", re.sub(r"\r?\n(?=[ \t])", "", text))


@pytest.mark.parametrize("raw", [b"hello", b" padded ", b"tab\there", b"nul\x00", b"del\x7f",
                                 b"fold\r\n  ed", b"\xb0\xa1", b"=?utf-8?B?7ZWc6riA?=", b""])
def test_unstructured_values_as_by_the_full_decoding(raw: bytes) -> None:
    assert decode_header_value(raw) == clean_text(decode_encoded_words(header_text(raw)))


whitespace_soup = st.lists(st.sampled_from(
    ["a", "가", " ", "  ", "\r\n", "\n", "\r", "\t", "\x0b", "\x1c", "\x85", "\xa0", "\u3000",
     "\u2028", "\u034f", "\u200b", "\ufeff", "\x00", "\x7f", "é"]), max_size=40).map("".join)


@given(whitespace_soup)
@example("a\u034fb")  # printable, yet dropped
@example("a\r\nb\u200b")
@example(" a b ")
def test_collapsing_is_split_and_join(text: str) -> None:
    assert _collapse_all(text) == " ".join(_NOT_SHOWN.sub("", text).split())


@pytest.mark.parametrize("body", [
    "La de da de da 0.\r\n" * 60,
    "Hi,\r\n\r\n" + "a  spaced   out line\r\n" * 40,
    "\r\n".join(["    indented"] * 80),
    "\t\t\n" * 300 + "late words " * 40,
])
def test_preview_windows_do_not_change_the_preview(body: str) -> None:
    raw = body.encode()
    expected = " ".join(_NOT_SHOWN.sub("", body).split())
    preview = body_preview(raw, 0, len(raw), is_html=False, charset="", transfer_encoding="")
    assert expected.startswith(preview)
    assert len(preview) >= min(180, len(expected))


@given(st.binary(max_size=120), st.booleans())
def test_base64_junk_is_dropped_as_by_the_expression(data: bytes, truncated: bool) -> None:
    compact = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    extra = len(compact) % 4
    if truncated or extra == 1:
        compact = compact[:len(compact) - extra]
    else:
        compact += b"=" * (-extra % 4)
    assert transfer_decode(data, "base64", truncated) == binascii.a2b_base64(compact)


@given(st.binary(max_size=40).map(lambda data: b"a" + data), st.booleans())
@example("a caf\u00e9".encode(), False)  # C3: the lowest lead bytes
@example("\u00df\u00e9".encode()[:3], True)  # and a character cut off
@example("a \ud55c\uae00".encode("cp949"), False)
def test_utf8_shortcut_agrees_with_the_incremental_decoder(data: bytes, partial: bool) -> None:
    def reference(data: bytes) -> str | None:
        try:
            if partial:
                return str(codecs.getincrementaldecoder("utf-8")().decode(data, final=False))
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    text, codec = decode_bytes_with_codec(data, None, partial=partial)
    if reference(data) is not None:
        assert (text, codec) == (reference(data), "ascii" if data.isascii() else "utf-8")
    else:
        assert codec != "utf-8"


@pytest.mark.parametrize("text", ["회의", "한글 제목", "정리", "가나다"])
def test_cp949_whose_first_byte_could_start_utf8(text: str) -> None:
    # 회 is C8 B8 in CP949, a valid UTF-8 start: the full decode decides.
    data = text.encode("cp949")
    assert decode_bytes(data, None) == text
    assert decode_bytes(data, "euc-kr") == text
    assert decode_bytes(data, None, partial=True) == text


def reference_unix(year: int, month: int, day: int, hour: int, minute: int, second: int,
                   zone_minutes: int) -> int:
    if second == 60:
        second = 59
    if abs(zone_minutes) > 18 * 60:
        zone_minutes = 0
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        seconds = int((moment - timedelta(minutes=zone_minutes)).timestamp())
    except (ValueError, OverflowError):
        return 0
    return seconds if 0 < seconds <= 253402300799 else 0


@given(st.integers(-1, 10001), st.integers(-1, 13), st.integers(-1, 32), st.integers(-1, 25),
       st.integers(-1, 61), st.integers(-1, 61), st.integers(-1200, 1200))
def test_unix_seconds_without_datetime(year: int, month: int, day: int, hour: int, minute: int,
                                       second: int, zone: int) -> None:
    args = (year, month, day, hour, minute, second, zone)
    assert _to_unix(*args) == reference_unix(*args)


@pytest.mark.parametrize("args", [
    (1970, 1, 1, 0, 0, 1, 0), (1970, 1, 1, 0, 0, 0, 0), (2024, 2, 29, 23, 59, 60, 540),
    (2023, 2, 29, 0, 0, 0, 0), (9999, 12, 31, 23, 59, 59, 0), (9999, 12, 31, 23, 59, 59, -60),
    (1, 1, 1, 0, 0, 0, 60), (2026, 12, 4, 17, 3, 4, 1081), (10 ** 20, 1, 1, 0, 0, 0, 0),
    (2026, 12, 4, 24, 0, 0, 0), (2026, 12, 4, 23, 60, 0, 0), (2026, 12, 4, 23, 0, 61, 0),
    (2026, 12, 4, -1, 0, 0, 0), (2026, 0, 4, 0, 0, 0, 0), (2026, 12, 32, 0, 0, 0, 0),
])
def test_unix_seconds_at_the_edges(args: tuple[int, int, int, int, int, int, int]) -> None:
    assert _to_unix(*args) == reference_unix(*args)


@pytest.mark.parametrize("raw", [
    b"<a@b>", b"<a@b> <c@d>", b"<> <  > <a b@c>", b"<\r\n a@b>", b"no id at all", b"x a@b y",
    b"<<a@b>>", b"<a@b", "<한@글>".encode(), b"", b"Your message <p@x> (sent)",
])
def test_first_message_id_is_the_first_of_all(raw: bytes) -> None:
    ids = message_ids(raw)
    assert first_message_id(raw) == (ids[0] if ids else "")


def regex_spans(raw: bytes, boundary: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """The boundary scan as one compiled pattern per boundary (the plain way)."""
    delimiter = b"--" + re.escape(boundary) + rb"(?:(--)|[ \t]*(?:\r?\n|\r?\Z))"
    spans: list[tuple[int, int]] = []
    part_start = -1
    position = start
    found = re.compile(delimiter).match(raw, start, end)
    if found is not None:
        if found.group(1):
            return []
        part_start = found.end()
        position = part_start - 1 if raw[part_start - 1] == 0x0A else part_start
    following = re.compile(b"\n" + delimiter)
    while True:
        found = following.search(raw, position, end)
        if found is None:
            break
        if part_start >= 0:
            stop = found.start()
            if stop > part_start and raw[stop - 1] == 0x0D:
                stop -= 1
            spans.append((part_start, max(part_start, stop)))
        if found.group(1):
            return spans
        part_start = found.end()
        position = part_start - 1 if raw[part_start - 1] == 0x0A else part_start
    if part_start >= 0:
        spans.append((part_start, end))
    return spans


delimiter_lines = st.lists(st.sampled_from([
    b"--b", b"--b--", b"--bx", b"--b--x", b"--b x", b"--b  ", b"--b\r", b"--b\t", b"--bb",
    b">--b", b"text", b"", b"--b-",
]), max_size=60)


@given(delimiter_lines, st.sampled_from([b"\r\n", b"\n"]), st.booleans(),
       st.sampled_from([0, 1, 16]))
def test_delimiters_are_found_as_by_the_expression(
    lines: list[bytes], newline: bytes, trailing: bool, near_misses: int,
) -> None:
    raw = b"x" + newline.join(lines) + (newline if trailing else b"")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parts, "_MAX_NEAR_MISSES", near_misses)  # both ways of searching
        assert parts._split(raw, b"b", 1, len(raw), 1000) == regex_spans(raw, b"b", 1, len(raw))


def test_many_near_miss_delimiters_still_split() -> None:
    quoted = b"".join(b"--bxx quoted %d\r\n" % n for n in range(100))
    raw = (b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\n' + quoted
           + b"--b\r\nContent-Type: application/pdf\r\n\r\nx\r\n--b--\r\n")
    block = read_header_block(raw, PART_FIELDS)
    found = list(iter_parts(raw, block.fields, block.body_start, len(raw)))
    assert [part.content_type for part in found] == ["text/plain", "application/pdf"]
    assert raw[found[0].start:found[0].end] == quoted.removesuffix(b"\r\n")


@pytest.mark.parametrize("headers", [
    b"", b"Subject: s\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding:  Quoted-Printable \r\n", b"Content-Type: \r\n",
    b"Content-Disposition:\r\n",
])
@pytest.mark.parametrize("body", [b"cGxhaW4gYm9keQ==", b"<b>plain</b> =ED=95=9C body", b""])
def test_messages_without_mime_headers_read_as_one_text_part(headers: bytes, body: bytes) -> None:
    # Without Content-Type (and Content-Disposition), a body is read without walking
    # the parts; with the default type written out, it is walked: the same either way.
    shortcut = summarize(b"From: a@b\r\n" + headers + b"\r\n" + body)
    walked = summarize(b"From: a@b\r\nContent-Type: text/plain\r\n" + headers + b"\r\n" + body)
    assert (shortcut.has_attachments, shortcut.preview) == (walked.has_attachments,
                                                            walked.preview)
