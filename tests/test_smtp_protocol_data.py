"""DATA: the CRLF.CRLF scan, dot-unstuffing, limits, and SMTP smuggling."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.protocols.smtp import MailFrom, MessageData, SmtpOptions, SmtpState
from nmail.protocols.smtp.data import (
    DataReader,
    finish_message,
    has_bare_line_ending,
    has_long_line,
    line_problem,
    unstuff,
)
from nmail.protocols.smtp.replies import BARE_LINE_ENDING, TEXT_LINE_TOO_LONG, Reply
from smtp_rig import Driver, final_lines

START = "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@test.local>\r\nDATA\r\n"
BARE = "554 5.6.0 Message contains bare CR or LF (RFC 5321 2.3.8)"
TOO_BIG = "552 5.3.4 Message size exceeds the server limit"


def deliver(body: bytes, options: SmtpOptions | None = None) -> tuple[list[str], Driver]:
    d = Driver(options)
    lines = d.send(START.encode() + body)
    return final_lines(lines), d


def messages(d: Driver) -> list[bytes]:
    return [e.content for e in d.of_type(MessageData)]


def test_message_content_is_exact_and_dot_unstuffed() -> None:
    body = b"Subject: t\r\n\r\n..leading dot\r\n...two\r\n.x\r\nend\r\n.\r\n"
    lines, d = deliver(body)
    assert lines[-1] == "250 2.0.0 Message accepted"
    assert messages(d) == [b"Subject: t\r\n\r\n.leading dot\r\n..two\r\nx\r\nend\r\n"]
    assert d.conn.state is SmtpState.READY and d.conn.sender is None


def test_first_line_dot_is_unstuffed_too() -> None:
    _, d = deliver(b"..first\r\nsecond\r\n.\r\n")
    assert messages(d) == [b".first\r\nsecond\r\n"]


def test_empty_message() -> None:
    lines, d = deliver(b".\r\n")
    assert lines[-1] == "250 2.0.0 Message accepted"
    assert messages(d) == [b""]


def test_data_split_across_reads_anywhere() -> None:
    body = b"Subject: split\r\n\r\nline one\r\n..dotted\r\n.\r\n"
    for cut in range(1, len(body)):
        d = Driver()
        d.send(START)
        d.send(body[:cut])
        assert not d.of_type(MessageData), cut
        d.send(body[cut:])
        assert messages(d) == [b"Subject: split\r\n\r\nline one\r\n.dotted\r\n"], cut


def test_commands_after_the_data_are_read_as_commands() -> None:
    lines, d = deliver(b"one\r\n.\r\nMAIL FROM:<c@example.org>\r\nRSET\r\n")
    assert lines[-3:] == ["250 2.0.0 Message accepted", "250 2.1.0 Sender OK", "250 2.0.0 OK"]
    assert len(d.of_type(MailFrom)) == 2


def test_a_refused_message_ends_the_transaction() -> None:
    from nmail.policy.decision import Decision

    d = Driver(
        decide=lambda e: (
            Decision(554, "5.4.6", "Mail loop detected")
            if isinstance(e, MessageData)
            else Decision(250, "2.0.0", "OK")
        )
    )
    lines = final_lines(d.send(START + "x\r\n.\r\n"))
    assert lines[-1] == "554 5.4.6 Mail loop detected"
    assert d.conn.state is SmtpState.READY and d.conn.sender is None


def test_message_over_the_limit_is_refused_after_the_terminator() -> None:
    options = SmtpOptions(max_message_size=100)
    lines, d = deliver(b"x" * 90 + b"\r\n" + b"y" * 90 + b"\r\n.\r\nNOOP\r\n", options)
    assert lines[-2:] == [TOO_BIG, "250 2.0.0 OK"]
    assert not messages(d)
    assert d.conn.bad_commands == 0


def test_oversized_content_is_not_held_in_memory() -> None:
    options = SmtpOptions(max_message_size=1000)
    d = Driver(options)
    d.send(START)
    chunk = b"z" * 70 + b"\r\n"
    for _ in range(2000):
        assert d.send(chunk) == []
        assert d.conn.buffered < 2000
    assert final_lines(d.send(b".\r\n"))[-1] == TOO_BIG
    assert not messages(d)


def test_dot_stuffing_does_not_count_towards_the_size() -> None:
    body = b"".join(b"..\r\n" for _ in range(30))  # 120 octets sent, 90 after unstuffing
    lines, d = deliver(body + b".\r\n", SmtpOptions(max_message_size=90))
    assert lines[-1] == "250 2.0.0 Message accepted"
    assert len(messages(d)[0]) == 90


def test_exact_size_limit() -> None:
    body = b"a" * 98 + b"\r\n"
    lines, _ = deliver(body + b".\r\n", SmtpOptions(max_message_size=100))
    assert lines[-1] == "250 2.0.0 Message accepted"
    lines, _ = deliver(b"a" + body + b".\r\n", SmtpOptions(max_message_size=100))
    assert lines[-1] == TOO_BIG


def test_text_line_over_1000_octets_is_refused_at_end_of_data() -> None:
    fits = b"a" * 998 + b"\r\n"
    lines, d = deliver(fits + b".\r\n")
    assert lines[-1] == "250 2.0.0 Message accepted"
    too_long = b"ok\r\n" + b"b" * 999 + b"\r\nmore\r\n.\r\n"
    lines, d = deliver(too_long)
    assert lines[-1].startswith("554 5.6.0")
    assert not messages(d)
    assert d.conn.state is SmtpState.READY


@pytest.mark.parametrize(
    "smuggled",
    [
        b"\n.\n",
        b"\r.\r",
        b"\r\n.\n",
        b"\n.\r\n",
        b"\r\n.\r",
        b"\r.\r\n",
        b"\n.\r",
        b"\r.\n",
        b"\r\n.\r\r\n",
        b"\r\n\x00.\r\n",
    ],
)
def test_smuggling_variants_never_end_the_data(smuggled: bytes) -> None:
    body = (
        b"Subject: first\r\n\r\nhello"
        + smuggled
        + b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@test.local>\r\nDATA\r\n"
        + b"Subject: smuggled\r\n\r\nboo\r\n.\r\n"
    )
    lines, d = deliver(body + b"QUIT\r\n")
    senders = [e.address for e in d.of_type(MailFrom)]
    assert senders == ["a@example.org"]
    contents = messages(d)
    assert len(contents) <= 1
    if b"\x00" in smuggled:
        # No bare CR/LF in this one: it is an ordinary (odd) message, delivered whole.
        assert contents and b"Subject: smuggled" in contents[0]
    else:
        assert contents == []
        assert BARE in lines
    assert lines[-1] == "221 2.0.0 Bye"


def test_bare_lf_alone_refuses_the_message() -> None:
    lines, d = deliver(b"line one\nline two\r\n.\r\n")
    assert lines[-1] == BARE
    assert not messages(d)
    lines, d = deliver(b"line one\rline two\r\n.\r\n")
    assert lines[-1] == BARE


def test_terminator_with_a_bare_cr_before_it_is_still_the_terminator() -> None:
    lines, _ = deliver(b"text\r\r\n.\r\nNOOP\r\n")
    assert lines[-2:] == [BARE, "250 2.0.0 OK"]


def test_data_reader_directly() -> None:
    reader = DataReader(max_size=1000)
    buf = bytearray(b"abc\r\n.")
    assert reader.scan(buf) is None
    buf += b"\r\nrest"
    assert reader.scan(buf) == b"abc\r\n"
    assert buf == bytearray(b"rest")


def test_pure_helpers() -> None:
    assert has_bare_line_ending(b"a\nb") and has_bare_line_ending(b"a\rb")
    assert has_bare_line_ending(b"a\r\n\rb") and not has_bare_line_ending(b"a\r\nb\r\n")
    assert has_long_line(b"x" * 999 + b"\r\n") and not has_long_line(b"x" * 998 + b"\r\n")
    assert has_long_line(b"ok\r\n" + b"x" * 999)
    assert unstuff(b".a\r\n..b\r\nc.\r\n") == b"a\r\n.b\r\nc.\r\n"
    assert isinstance(finish_message(b"x" * 11, 10, False), Reply)
    assert finish_message(b"", 10, False) == b""


def reference_line_problem(raw: bytes) -> Reply | None:
    if has_bare_line_ending(raw):
        return BARE_LINE_ENDING
    return TEXT_LINE_TOO_LONG if has_long_line(raw) else None


PIECES = [b"\r\n", b"\r", b"\n", b"a", b".", b"x" * 997, b"x" * 998, b"x" * 999, b"\r\r\n"]


@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_line_problem_is_the_counting_checks(pieces: list[bytes]) -> None:
    # Short content is split at CRLF; longer content is counted and walked.
    raw = b"".join(pieces)
    assert line_problem(raw) == reference_line_problem(raw)


def test_line_problem_on_both_sides_of_the_split_limit() -> None:
    line = b"y" * 70 + b"\r\n"
    for size in (64 * 1024 - 100, 64 * 1024 + 100):
        body = line * (size // len(line))
        assert line_problem(body) is None
        assert line_problem(body + b"z\n") == BARE_LINE_ENDING
        assert line_problem(b"q\r" + body) == BARE_LINE_ENDING
        assert line_problem(body + b"x" * 999 + b"\r\n") == TEXT_LINE_TOO_LONG
        assert line_problem(body + b"x" * 998 + b"\r\n") is None
        assert line_problem(b"x" * 999 + b"\n" + body) == BARE_LINE_ENDING  # bare comes first


def reference_message(stream: bytes, max_size: int) -> tuple[bytes | Reply, bytes] | None:
    """One DATA read from the whole stream at once, the plain way: the first
    CRLF.CRLF (or ".CRLF" first) ends it, every line's leading dot goes.
    (content or refusal, what follows), or None when it has not ended."""
    if stream.startswith(b".\r\n"):
        return b"", stream[3:]
    end = stream.find(b"\r\n.\r\n")
    if end < 0:
        return None
    raw, rest = stream[: end + 2], stream[end + 5 :]
    refusal = reference_line_problem(raw)
    if refusal is not None:
        return refusal, rest
    content = (b"\r\n" + raw).replace(b"\r\n.", b"\r\n")[2:]
    assert len(content) <= max_size
    return content, rest


DOTTY = [b".", b"..", b"\r\n", b"\r\n.", b"\r\n.\r", b"\r", b"\n", b"a", b"x" * 30, b".\r\n"]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(DOTTY), max_size=30), st.data())
def test_the_scan_finds_the_end_and_the_dotted_lines_as_the_whole_stream_shows(
    pieces: list[bytes], data: st.DataObject
) -> None:
    """The scan looks for CRLF "." once per byte and notes dotted lines on the
    way (DataReader._end); fed in any cuts it gives what the plain way gives."""
    stream = b"".join(pieces) + data.draw(st.sampled_from([b"", b"\r\n.\r\nNOOP\r\n"]))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    max_size = 2000  # never reached here: when a limit is seen depends on the cuts
    reader = DataReader(max_size)
    buf = bytearray()
    got: bytes | Reply | None = None
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        buf += stream[a:b]
        got = reader.scan(buf)
        if got is not None:
            buf += stream[b:]  # what follows the message stays for the commands
            break
    expected = reference_message(stream, max_size)
    if expected is None:
        assert got is None
    else:
        assert (got, bytes(buf)) == expected


def test_a_dotted_line_then_the_end_in_later_reads() -> None:
    reader = DataReader(max_size=1000)
    buf = bytearray(b"a\r\n.")
    assert reader.scan(buf) is None  # the end, or a dotted line: not known yet
    buf += b".b\r\nc\r\n."
    assert reader.scan(buf) is None
    buf += b"\r\n"
    assert reader.scan(buf) == b"a\r\n.b\r\nc\r\n"
    assert unstuff(b"a\r\n.b", stuffed=False) == b"a\r\n.b"  # told: no dotted line
    assert unstuff(b".a\r\n..b", stuffed=True) == b"a\r\n.b"
