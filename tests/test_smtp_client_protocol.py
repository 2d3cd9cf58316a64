"""The SMTP client without I/O: reading replies, EHLO keywords, commands, the DATA body."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmail.protocols.smtp import ReplyError, ReplyReader, ServerReply, parse_ehlo, wire_body
from nmail.protocols.smtp.client import (
    MAX_REPLY,
    MAX_REPLY_LINE,
    auth_plain_command,
    clean_lines,
    hello_command,
    mail_command,
    rcpt_command,
    sasl_line,
)
from nmail.queue.content import normalize_line_endings

BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")

# -- replies ---------------------------------------------------------------------------

PIPELINED = (
    b"250-mx.example.net Hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
    b"250 2.1.0 Sender OK\r\n550 5.1.1 No such user\r\n354 Go ahead\r\n"
)
EXPECTED = [
    ServerReply(250, ("mx.example.net Hello", "PIPELINING", "SIZE 1000")),
    ServerReply(250, ("2.1.0 Sender OK",)),
    ServerReply(550, ("5.1.1 No such user",)),
    ServerReply(354, ("Go ahead",)),
]


def test_replies_in_one_chunk() -> None:
    assert ReplyReader().feed(PIPELINED) == EXPECTED


@given(st.lists(st.integers(0, len(PIPELINED)), max_size=12))
def test_replies_split_anywhere_come_out_the_same(cuts: list[int]) -> None:
    reader = ReplyReader()
    got: list[ServerReply] = []
    edges = [0, *sorted(cuts), len(PIPELINED)]
    for a, b in itertools.pairwise(edges):
        got += reader.feed(PIPELINED[a:b])
    assert got == EXPECTED
    assert not reader.pending


def test_every_single_byte_boundary() -> None:
    reader = ReplyReader()
    got: list[ServerReply] = []
    last_lines = re.finditer(rb"^\d{3}(?: [^\r\n]*)?\r\n", PIPELINED, re.MULTILINE)
    reply_ends = {m.end() for m in last_lines}
    for i in range(len(PIPELINED)):
        got += reader.feed(PIPELINED[i : i + 1])
        assert reader.pending == (i + 1 not in reply_ends)
    assert got == EXPECTED
    assert not reader.pending


def test_bare_lf_and_code_only_lines_are_tolerated() -> None:
    replies = ReplyReader().feed(b"220-sloppy\n220 ready\n250\r\n")
    assert replies == [ServerReply(220, ("sloppy", "ready")), ServerReply(250, ("",))]
    assert replies[0].text == "sloppy\nready" and str(replies[0]) == "220 sloppy ready"
    assert replies[1].ok and not ServerReply(354, ("go",)).ok


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 400 Bad Request\r\n",
        b"25 short\r\n",
        b"2x0 letters\r\n",
        b"250x no separator\r\n",
        b"199 out of range\r\n",
        b"600 out of range\r\n",
        b"250-first\r\n550 other code\r\n",
        b"\r\n",
    ],
)
def test_garbage_is_a_protocol_error(garbage: bytes) -> None:
    with pytest.raises(ReplyError):
        ReplyReader().feed(garbage)


def test_an_overlong_line_is_refused_before_it_ends() -> None:
    reader = ReplyReader()
    reader.feed(b"250 " + b"x" * (MAX_REPLY_LINE - 10))
    with pytest.raises(ReplyError):
        reader.feed(b"x" * 20)


def test_an_overlong_multiline_reply_is_refused() -> None:
    reader = ReplyReader()
    line = b"250-" + b"x" * 1000 + b"\r\n"
    with pytest.raises(ReplyError):
        for _ in range(MAX_REPLY // len(line) + 2):
            reader.feed(line)


def test_long_but_sane_lines_pass() -> None:
    line = b"550 " + b"y" * 1500 + b"\r\n"
    assert ReplyReader().feed(line)[0].code == 550


# -- EHLO ------------------------------------------------------------------------------


def test_ehlo_keywords_and_parameters() -> None:
    reply = ServerReply(250, (
        "mx.example.net greets you", "pipelining", "SIZE 10240000", "AUTH PLAIN LOGIN",
        "AUTH=CRAM-MD5", "8BITMIME", "dsn", "X-EXPS=LOGIN", "-bad keyword", "",
    ))
    ext = parse_ehlo(reply)
    assert "PIPELINING" in ext and "pipelining" in ext and "DSN" in ext
    assert "STARTTLS" not in ext and "mx.example.net" not in ext
    assert ext.size_limit == 10240000
    assert ext.params("size") == ("10240000",)
    assert ext.auth_mechanisms == {"PLAIN", "LOGIN", "CRAM-MD5"}
    assert "X-EXPS=LOGIN" not in ext and "-BAD" not in ext


def test_size_zero_means_no_fixed_limit() -> None:
    assert parse_ehlo(ServerReply(250, ("x", "SIZE 0"))).size_limit is None
    assert parse_ehlo(ServerReply(250, ("x", "SIZE"))).size_limit is None
    assert "SIZE" in parse_ehlo(ServerReply(250, ("x", "SIZE")))


# -- commands --------------------------------------------------------------------------


def test_commands() -> None:
    assert hello_command("EHLO", "mail.test") == b"EHLO mail.test\r\n"
    assert mail_command("a@b.test", ["SIZE=10", "BODY=8BITMIME"]) == (
        b"MAIL FROM:<a@b.test> SIZE=10 BODY=8BITMIME\r\n"
    )
    assert mail_command("") == b"MAIL FROM:<>\r\n"
    assert rcpt_command("j\u00f6rg@b.test", ("NOTIFY=NEVER",)) == (
        "RCPT TO:<j\u00f6rg@b.test> NOTIFY=NEVER\r\n".encode()
    )
    assert auth_plain_command("u", "p") == b"AUTH PLAIN AHUAcA==\r\n"
    assert sasl_line("user") == b"dXNlcg==\r\n"


@pytest.mark.parametrize("bad", ["\r", "\n", "\r\n", "\x00", "\x1b", "\x7f", "\t"])
def test_control_characters_never_reach_a_command(bad: str) -> None:
    injected = f"a@b.test{bad}RCPT TO:<victim@c.test>"
    with pytest.raises(ValueError):
        mail_command(injected)
    with pytest.raises(ValueError):
        rcpt_command(injected)
    with pytest.raises(ValueError):
        mail_command("a@b.test", [f"ENVID=x{bad}DATA"])
    with pytest.raises(ValueError):
        rcpt_command("a@b.test", [f"NOTIFY=NEVER{bad}"])
    with pytest.raises(ValueError):
        hello_command("EHLO", f"mail.test{bad}")


@pytest.mark.parametrize("bad", ["a b@c.test", "a@c.test> NOTIFY=SUCCESS", "<a@c.test"])
def test_a_path_cannot_grow_parameters(bad: str) -> None:
    with pytest.raises(ValueError):
        rcpt_command(bad)
    with pytest.raises(ValueError):
        mail_command("a@b.test", ["SIZE=1 NOTIFY=NEVER"])
    with pytest.raises(ValueError):
        rcpt_command("")


# -- the body --------------------------------------------------------------------------


def unstuff(wire: bytes) -> bytes:
    """What a receiver stores: the terminator removed, leading dots undone."""
    assert wire.endswith(b"\r\n.\r\n")
    lines = wire[:-3].split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a\r\n.b\r\n", b"a\r\n..b\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"x\n.\r\ny\r\n", b"x\r\n..\r\ny\r\n.\r\n"),  # smuggling: one message
        (b"x\r.\ry", b"x\r\n..\r\ny\r\n.\r\n"),
        (b"no end", b"no end\r\n.\r\n"),
        (b"", b"\r\n.\r\n"),
    ],
)
def test_wire_body(body: bytes, expected: bytes) -> None:
    assert wire_body(body) == expected


def test_a_clean_body_is_not_copied() -> None:
    body = b"Subject: x\r\n\r\nhello\r\n"
    assert clean_lines(body) is body


@given(st.binary(max_size=300) | st.lists(st.sampled_from([b"\r", b"\n", b".", b"a", b"\r\n"]),
                                          max_size=40).map(b"".join))
def test_any_body_is_one_message_with_its_lines_intact(body: bytes) -> None:
    wire = wire_body(body)
    assert BARE.search(wire) is None
    # The only end-of-data marker is the last one, and nothing is lost or added.
    assert wire.find(b"\r\n.\r\n") == len(wire) - 5
    assert not wire.startswith(b".\r\n")
    assert unstuff(wire) == normalize_line_endings(body)
