"""The body as the queue's SMTP client sends it: clean lines, dot-stuffed, one terminator."""

from __future__ import annotations

import asyncio
import re

import aiosmtplib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures_smtp_sink import SmtpSink
from nmail.queue.content import normalize_line_endings
from nmail.queue.smtp_data import clean_lines, send_data, wire_body

BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


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


def test_send_data_delivers_through_the_protocol_and_reports_refusals() -> None:
    async def main() -> None:
        sink = await SmtpSink("127.0.0.1", 0).start()
        try:
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False)
            await smtp.connect()
            await smtp.mail("a@example.org")
            await smtp.rcpt("b@example.net")
            reply = await send_data(smtp, b"Subject: t\r\n\r\n.dot\nbare\r\n", 30)
            assert reply.code == 250
            assert sink.received[0].data.endswith(b"\r\n.dot\r\nbare\r\n")
            sink.data_replies.append("552 5.3.4 Too big")
            await smtp.mail("a@example.org")
            await smtp.rcpt("b@example.net")
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await send_data(smtp, b"x\r\n", 30)
            assert refused.value.code == 552
            await smtp.quit()
        finally:
            await sink.stop()

    asyncio.run(main())


def test_an_unknown_aiosmtplib_inside_falls_back_to_its_own_data() -> None:
    class Client:
        protocol = object()  # no _command_lock: not the shape send_data knows

        def __init__(self) -> None:
            self.sent: list[bytes] = []

        async def data(self, message: bytes, **options: float) -> str:
            self.sent.append(message)
            return "250 ok"

    client = Client()
    reply = asyncio.run(send_data(client, b"a\n.b", 5))  # type: ignore[arg-type]
    assert reply == "250 ok"
    assert client.sent == [b"a\r\n.b\r\n"]  # clean lines; aiosmtplib stuffs it itself
