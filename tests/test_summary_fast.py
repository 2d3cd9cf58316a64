"""The quick paths of the index row's parse give what the full paths give, for any bytes.

summary._quick (two regex scans of a usual header block, fields.read_usual_block),
preview.body_preview's ASCII first read and indexrow's ASCII fitting exist only
to cost fewer instructions (bench/summary_instructions.py): each is checked here
against the path it shortcuts, on generated and hostile messages.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import test_mime_fuzz as fuzz
from nmail.mailstore import indexrow
from nmail.mime import dates, preview, summary, threads
from nmail.mime.fields import read_header_block, read_usual_block

DIFF = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def full(raw: bytes) -> tuple[Any, ...] | str:
    """What summarize gave before the quick path: `_summarize`'s fields (or that it raised)."""
    try:
        found = summary._summarize(raw)
    except Exception as exc:
        return f"raised {type(exc).__name__}"
    return tuple(getattr(found, name) for name in summary.MessageSummary.__match_args__)


def quick(raw: bytes) -> tuple[Any, ...] | str | None:
    try:
        return summary._quick(raw)
    except Exception as exc:
        return f"raised {type(exc).__name__}"


def old_sort_keys(subject: str, from_name: str, from_addr: str) -> tuple[str, str]:
    """indexrow.sort_keys as it was written before its one-call prefix test."""
    base = subject.strip().casefold()
    while True:
        before = base
        for prefix in indexrow._PREFIXES:
            if base.startswith(prefix):
                base = base[len(prefix):].lstrip()
        if base.startswith("[") and "]" in base:
            base = base[base.index("]") + 1:].lstrip()
        if base == before:
            break
    sender = (from_name.strip() or from_addr.strip()).casefold()
    return (indexrow._text(base, indexrow.SORT_KEY_LENGTH),
            indexrow._text(sender, indexrow.SORT_KEY_LENGTH))


def old_values(fields: tuple[Any, ...], internal_date: int) -> tuple[Any, ...]:
    """indexrow.summary_values as it was: every text through _text."""
    s = summary.MessageSummary(*fields)
    limits = indexrow._LIMITS
    date = s.date if 0 < s.date < 2**62 else internal_date
    return (int(date), *(indexrow._text(getattr(s, name), limits[key]) for name, key in (
        ("from_name", "from_name"), ("from_addr", "from_addr"), ("to_addrs", "to_addrs"),
        ("cc_addrs", "cc_addrs"), ("subject", "subject"), ("message_id", "message_id"),
        ("in_reply_to", "in_reply_to"), ("thread_keys", "thread_id"))),
        bool(s.has_attachments), indexrow._text(s.preview, limits["preview"]),
        *old_sort_keys(s.subject, s.from_name, s.from_addr),
        True)  # dot_lines: not said, so "may" (POP3 stuffs)


def assert_same(raw: bytes) -> None:
    """The quick path (when it takes the message) and the full one agree, row included."""
    expected = full(raw)
    got = quick(raw)
    if got is not None:
        assert got == expected, raw
    if not isinstance(expected, str):
        assert indexrow.index_values(raw, 1765080000) == old_values(expected, 1765080000)
        assert summary.summarize(raw) == summary.MessageSummary(*expected)
    block = read_usual_block(raw, summary._MESSAGE_LINE)
    if block is not None:
        reference = read_header_block(raw, summary._MESSAGE_FIELDS)
        assert block == (reference.fields, reference.body_start), raw


# Header values: encoded words in several charsets (cp949, euc-kr, utf-8,
# iso-2022-kr), raw 8-bit bytes, folding, NUL, bare LF and CR, junk.
WORDS = [
    "=?utf-8?B?7ZWc6riA?=", "=?euc-kr?B?sKGzqg==?=", "=?ks_c_5601-1987?B?jGM=?=",
    "=?cp949?Q?=8C=63?=", "=?iso-2022-kr?B?GyQpQw4hIQ8=?=", "=?utf-8?Q?caf=C3=A9?=",
    "=?euc-kr?B?!!!?=", "=?utf-8?B?7ZW?=", "=?x-unknown?Q?a?=", "=?utf-16?B?AGEAYg==?=",
]
PIECES = [*fuzz.FRAGMENTS, *WORDS, "Kim <kim@example.com>", '"Lee, Y" <lee@example.org>',
          "a@b, c@d", "<id.1@host>", "<>", "Mon,  7 Dec 2026 04:07:52 +0000 (UTC)", "Re: [x] ",
          "\r\n\t", "\r\n", "\n", "\r", "\x00", "x" * 300]
RAW = [*fuzz.RAW_BYTES, "한글".encode("cp949"), "한글".encode(), b"\x1b$)C\x0e!!\x0f",
       b"\xa4\xa1" * 40]
NAMES = [*fuzz.NAMES, "Message-Id", "References", "In-Reply-To", "Cc", "CC", "From ", "To\t",
         "Received", "DKIM-Signature", "X-Mailer", "content-transfer-encoding", "Content-ID",
         "Return-Path", "Date"]

value = st.lists(st.one_of(st.sampled_from(PIECES).map(str.encode), st.sampled_from(RAW)),
                 max_size=10).map(b"".join)
field = st.one_of(
    st.builds(lambda name, v: name.encode() + b":" + v, st.sampled_from(NAMES), value),
    st.builds(lambda name, v: name.encode() + b": " + v, st.sampled_from(NAMES), value),
)
line = st.one_of(  # mostly fields, so that most messages are usual ones
    field, field, field, field, field,
    st.sampled_from([b" continued", b"\tcontinued", b"not a header", b"", b" ", b"\x0c",
                     b"From nobody Mon Dec  7", b":empty name", b"X-Long: " + b"y" * 70000]),
)


@DIFF
@given(st.lists(line, max_size=14), fuzz.body,
       st.sampled_from([b"\r\n", b"\r\n", b"\n"]), st.sampled_from([b"\r\n", b"\n"]))
@example([b"From: <a@example.com>", b"To: <b@example.org>",
          b"Date: Mon,  7 Dec 2026 04:07:52 +0000 (UTC)", b"Message-Id: <331f.0003.0000@vm>"],
         [b"1XXXX", b"2XXXX"], b"\r\n", b"\r\n")
@example([b"Subject: a", b"subject: b", b"FROM: x@y", b"from: z@w"], [b"text"], b"\r\n", b"\n")
@example([b"Subject: a\x00b", b"To: a@b\nCc: c@d"], [b"t"], b"\r\n", b"\r\n")
def test_header_soup_agrees(headers: list[bytes], lines: list[bytes], newline: bytes,
                            blank: bytes) -> None:
    raw = newline.join(headers) + newline + blank + newline.join(lines)
    assert_same(raw)


# What mail usually looks like: CRLF, folding only, names in any case; the
# values still hold encoded words, 8-bit bytes, NUL, junk and long runs.
usual_value = st.lists(st.one_of(
    st.sampled_from([p for p in PIECES if "\n" not in p and "\r" not in p]).map(str.encode),
    st.sampled_from(RAW), st.sampled_from([b"\r\n ", b"\r\n\t"])), max_size=10).map(b"".join)
usual_name = st.sampled_from(NAMES).map(
    lambda name: name.strip()).flatmap(lambda name: st.sampled_from([name, name.upper()]))
usual_field = st.builds(lambda name, v: name.encode() + b": " + v, usual_name, usual_value)


@DIFF
@given(st.lists(usual_field, max_size=14), fuzz.body)
def test_usual_headers_agree(headers: list[bytes], lines: list[bytes]) -> None:
    raw = b"\r\n".join(headers) + b"\r\n\r\n" + b"\r\n".join(lines)
    if headers:
        assert quick(raw) is not None
    assert_same(raw)


@DIFF
@given(fuzz.trees, st.lists(line, max_size=6))
def test_nested_multiparts_agree(tree: object, headers: list[bytes]) -> None:
    raw = b"\r\n".join([b"Subject: nested", *headers, b"MIME-Version: 1.0"]) + b"\r\n"
    assert_same(raw + fuzz.serialize(tree))


@DIFF
@given(st.binary(max_size=3000))
def test_random_bytes_agree(raw: bytes) -> None:
    assert_same(raw)
    assert_same(b"From: a@b\r\nSubject: x\r\n\r\n" + raw)


bodies = st.one_of(
    st.lists(st.sampled_from([b"plain words", b"  spaced\tout  ", b"\x00\x01", b"\xe2\x80\x8b",
                              b"\x1b$)C", b"\xb0\xa1", b"=41", b"7ZWc", b"", b"x" * 90,
                              "\u034f".encode()]),
             max_size=60).map(b"\r\n".join),
    st.binary(max_size=3000),
)


@DIFF
@given(bodies, st.sampled_from(["", "US-ASCII", "utf-8", "euc-kr", "iso-2022-kr", "utf-7",
                                "utf-16", "bogus", "latin1"]),
       st.sampled_from(["", "7bit", "8bit", "base64", "quoted-printable"]), st.booleans(),
       st.integers(0, 40))
def test_body_preview_first_read_agrees(body: bytes, charset: str, encoding: str,
                                        is_html: bool, start: int) -> None:
    raw = b"h" * start + body
    got = preview.body_preview(raw, start, len(raw), is_html=is_html, charset=charset,
                               transfer_encoding=encoding)
    expected = preview._read_preview(raw, start, len(raw), is_html=is_html, charset=charset,
                                     transfer_encoding=encoding)
    assert got == expected


@given(st.text(max_size=60), st.text(max_size=20), st.text(max_size=20))
@example("Re: [dev] RE: Fwd:  회신: x", "", "A@B")
@example("[tag] re: [x]", " Kim ", "")
def test_sort_keys_agree(subject: str, name: str, address: str) -> None:
    assert indexrow.sort_keys(subject, name, address) == old_sort_keys(subject, name, address)


def test_the_usual_messages_take_the_quick_path() -> None:
    """smtp-source's message, Korean, multipart, a reply: none falls back."""
    korean = base64.b64encode("김철수".encode("euc-kr"))
    for raw in (
        b"From: <a@example.com>\r\nTo: <b@example.org>\r\nDate: Mon,  7 Dec 2026 04:07:52"
        b" +0000 (UTC)\r\nMessage-Id: <331f.0003.0000@vm>\r\n\r\n1XXX\r\n",
        b"From: =?euc-kr?B?" + korean + b"?= <kim@example.co.kr>\r\nReceived: from x\r\n"
        b"\tby y; Mon, 7 Dec 2026\r\nX-Mailer: \xb0\xa1\r\nContent-Type: text/plain;"
        b" charset=euc-kr\r\n\r\n\xb0\xa1\r\n",
        b"Subject: Re: x\r\nReferences: <a@b>\r\n <c@d>\r\nContent-Type: multipart/mixed;"
        b" boundary=b\r\n\r\n--b\r\n\r\ntext\r\n--b--\r\n",
    ):
        assert quick(raw) is not None
        assert_same(raw)


@pytest.mark.parametrize("raw", [
    b"From: a@b\nSubject: bare LF\n\nbody\n",  # LF lines: read_header_block's loop
    b"From nobody Mon Dec 7\r\nSubject: mbox\r\n\r\nbody\r\n",
    b"Subject: x\r\nnot a header\r\n\r\nbody\r\n",  # the body starts at that line
    b"\r\nbody only\r\n",
    b"Subject: no blank line\r\n",
    b"X-Big: " + b"z" * (64 * 1024) + b"\r\nSubject: late\r\n\r\nbody\r\n",
])
def test_unusual_blocks_take_the_full_path(raw: bytes) -> None:
    assert quick(raw) is None
    assert_same(raw)


@given(st.text(max_size=40), st.text(max_size=40), st.lists(st.text(max_size=8), max_size=3))
@example("id@host", "Re: x", [])
@example("id@host", "", [""])
def test_a_first_messages_key_is_its_own_ids(message_id: str, subject: str,
                                            references: list[str]) -> None:
    """thread_keys' one-step case gives what its general steps give."""
    got = threads.thread_keys(references, "", message_id, subject, b"fallback")
    ids = [i for i in references if i]
    chain = ids[:1] + ids[1:][-threads.MAX_REFERENCES:] + ["", message_id]
    keys = list(dict.fromkeys(threads.message_key(i) for i in chain if i))
    assert got == (" ".join(keys) if keys else threads.thread_keys(
        references, "", "", subject, b"fallback"))


def test_cached_address_readings_are_the_readings() -> None:
    """From:/To: values are read once; a second message with them gets the same fields."""
    raw = (b"From: =?euc-kr?B?sKGzqg==?= <kim@example.co.kr>\r\nTo: a@b, \"C, D\" <c@d>\r\n"
           b"\r\nbody\r\n")
    first, second = quick(raw), quick(raw)
    assert first == second == full(raw)
    assert isinstance(first, tuple) and first[1] == "가나" and first[3] == 'a@b, "C, D" <c@d>'
    long_to = b"To: " + b", ".join(b"user%d@example.org" % n for n in range(40)) + b"\r\n"
    assert_same(long_to + b"\r\nbody\r\n")  # past the cached length: read each time


def old_parse_date(value: bytes) -> int:
    """dates.parse_date as it was before its day number was cached (RFC 5322 shapes)."""
    text = value.decode("latin-1")[:200]
    match = dates._RFC5322.match(text)
    if match is not None:
        day, month_name, year, hour, minute, second, zone = match.groups()
        month = dates._MONTHS.get(month_name.lower())
        if month is not None:
            minutes = dates._zone_minutes(zone)
            if zone and zone[0] not in "+-":
                offset = dates._OFFSET.match(text, match.end())
                if offset is not None:
                    minutes = dates._offset_minutes(offset)
            return dates._to_unix(dates._year(year), month, int(day), int(hour), int(minute),
                                  int(second or 0), minutes)
    return dates._parse_loose(text)


date_value = st.builds(
    lambda weekday, day, month, year, clock, zone: f"{weekday}{day} {month} {year} {clock}{zone}",
    st.sampled_from(["", "Mon, ", "Tue,  ", "mon "]),
    st.sampled_from(["1", "07", "29", "30", "31", "0", "99"]),
    st.sampled_from(["Jan", "Feb", "feb", "September", "Sept", "Foo", "Dec"]),
    st.sampled_from(["2026", "2024", "1900", "0000", "00", "49", "50", "999", "9999", "1970"]),
    st.sampled_from(["04:07:52", "23:59:60", "24:00:00", "00:00", "12:60:00", "9:5:00"]),
    st.sampled_from(["", " +0000 (UTC)", " +0900", " -1200", " +9900", " KST", " GMT+09:00",
                     " XYZ", " -0000"]),
).map(str.encode)


@given(date_value)
@example(b"Mon,  7 Dec 2026 04:07:52 +0000 (UTC)")
@example(b"Thu, 1 Jan 1970 00:00:00 +0000")
@example(b"31 Dec 9999 23:59:59 -1400")
def test_parse_date_with_cached_days_agrees(value: bytes) -> None:
    assert dates.parse_date(value) == old_parse_date(value)


@given(st.lists(st.sampled_from([b"<", b">", b"id", b"@", b"host.example", b" ", b"\t", b"\x00",
                                 b"\x7f", b"\xb0\xa1", b"\r\n ", b"=?utf-8?Q?a?=", b'"']),
                max_size=8).map(b"".join))
@example(b"<331f.0003.0000@vm>")
@example(b"<>")
@example(b"<a b@c>")
@example(b"<<a@b>>")
def test_message_id_shortcut_agrees(raw: bytes) -> None:
    assert summary._message_id(raw) == threads.first_message_id(raw)
