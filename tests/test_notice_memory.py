"""A notice about a large queued message reads only what it quotes (queue/notice_original.py).

The quote itself: RET=HDRS (or none) is the header section, RET=FULL the whole message
up to QUOTE_LIMIT and past it the beginning cut after a CRLF, the same whether the body
was in memory or read from its file; bad files (missing, no envelope line, no blank
line, a header section past the limit, empty) give a quote, never an error. Then a real
OutboundQueue fails a 20 MiB message at RCPT: the notice quotes the right part and the
process's peak RSS (VmHWM after clear_refs) grows by a few MiB, not by the message.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fixtures_outbound import Harness, message, wait_until
from nmail.bounce.dsn import DsnFacts, RecipientReport, build_dsn
from nmail.mime.reading import read_view
from nmail.queue import envelope_line, notice_original
from nmail.queue.notice_original import QUOTE_LIMIT, from_bytes, from_file
from nmail.queue.store import FAILED

pytestmark = pytest.mark.timeout(120)

MIB = 1 << 20
HEAD = b"From: a@nmail.test\r\nTo: b@remote.test\r\nSubject: big\r\nMessage-ID: <m1@nmail.test>\r\n"


def big(size: int) -> bytes:
    """A message of `size` bytes: headers, then lines of text."""
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
    body = line * ((size - len(HEAD) - 2) // len(line) + 1)
    return HEAD + b"\r\n" + body[: size - len(HEAD) - 2 - 2] + b"\r\n"


def body_file(tmp_path: Path, content: bytes, envelope: bool = True) -> Path:
    path = tmp_path / "0123456789abcdef.eml"
    path.write_bytes((envelope_line.MARKER + b'{"v": 1}\r\n' if envelope else b"") + content)
    return path


@pytest.mark.parametrize("size", [200, QUOTE_LIMIT - 1, QUOTE_LIMIT, QUOTE_LIMIT + 1,
                                  3 * MIB + 17])
@pytest.mark.parametrize("envelope", [True, False])
def test_the_quote_is_the_same_from_memory_and_from_the_file(tmp_path: Path, size: int,
                                                             envelope: bool) -> None:
    content = big(size)
    assert len(content) == size
    path = body_file(tmp_path, content, envelope)
    for full in (False, True):
        kept, read = from_bytes(content, full), from_file(path, full)
        assert kept == read, (size, full)
        assert read.size == size
        if not full:
            assert read.data == HEAD and not read.cut
        elif size <= QUOTE_LIMIT:
            assert read.data == content and not read.cut  # whole, as before
        else:
            assert read.cut and content.startswith(read.data)
            assert QUOTE_LIMIT - 80 < len(read.data) <= QUOTE_LIMIT
            assert read.data.endswith(b"\r\n")


def test_odd_bodies_still_give_a_quote(tmp_path: Path) -> None:
    no_blank_line = b"From: a@nmail.test\r\nSubject: only headers\r\n"
    assert from_file(body_file(tmp_path, no_blank_line), False).data == no_blank_line
    assert from_bytes(no_blank_line, False).data == no_blank_line
    long_head = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 100) for i in range(20_000))
    quote = from_file(body_file(tmp_path, long_head + b"\r\nbody\r\n"), False)
    assert len(quote.data) <= QUOTE_LIMIT and quote.data.endswith(b"\r\n")
    assert long_head.startswith(quote.data)
    one_long_line = b"X: " + b"z" * (2 * QUOTE_LIMIT)
    assert len(from_file(body_file(tmp_path, one_long_line), True).data) == QUOTE_LIMIT
    empty = from_file(body_file(tmp_path, b""), True)
    assert empty.data == b"" and empty.size == 0
    broken = b"#nmail-envelope no line end"  # not an envelope line: part of the message
    assert from_file(body_file(tmp_path, broken, envelope=False), True).data == broken
    with pytest.raises(OSError):
        from_file(tmp_path / "gone.eml", False)


def test_a_cut_original_says_so_in_both_languages() -> None:
    content = big(3 * MIB)
    quote = from_bytes(content, True)
    facts = DsnFacts("0123456789abcdef", "a@nmail.test", 0.0, quote.data, ret="FULL",
                     original_size=quote.size)
    dsn = build_dsn(facts, [RecipientReport("b@remote.test", "failed", "5.1.1", "550 no")],
                    reporting_mta="mail.nmail.test")
    assert len(dsn) < 2 * QUOTE_LIMIT
    text = read_view(dsn).text
    assert "only its beginning (1.0 MiB) is attached" in text and "(3.0 MiB)" in text
    assert "앞부분(1.0 MiB)만 첨부합니다" in text


def hwm_and_rss() -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return (int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024)


def reset_peak() -> int:
    """VmHWM := VmRSS now; returns it."""
    Path("/proc/self/clear_refs").write_text("5")
    return hwm_and_rss()[1]


@pytest.mark.parametrize("ret", [None, "FULL"])
def test_a_notice_about_a_20_mib_message_reads_what_it_quotes(engine: Engine, tmp_path: Path,
                                                              ret: str | None) -> None:
    harness = Harness(engine, tmp_path)
    growth: list[int] = []

    async def main() -> None:
        await harness.start_sinks()
        harness.dns.mx("remote.test", (10, "mx.remote.test"))
        harness.dns.add("mx.remote.test", "A", "127.0.0.2")
        harness.sinks[0].rcpt_replies["bob@remote.test"] = ["550 5.1.1 No such user"]
        queue = harness.make_queue()
        lines = base64.encodebytes(os.urandom(15 * MIB)).replace(b"\n", b"\r\n")
        content = message(body="")
        content += lines[: 20 * MIB - len(content)]
        queue_id = queue.enqueue("alice@nmail.test", ["bob@remote.test"], content,
                                 dsn_ret=ret)
        del content
        gc.collect()
        start = reset_peak()
        task = asyncio.create_task(queue.run())
        try:
            await wait_until(lambda: queue.show(queue_id).recipients[0].state == FAILED
                             and len(harness.bounces) == 1, what="the failure notice")
            growth.append(hwm_and_rss()[0] - start)
        finally:
            await queue.stop()
            await task

    try:
        asyncio.run(main())
    finally:
        asyncio.run(harness.close())
    [(dsn, rcpt)] = harness.bounces
    assert rcpt == "alice@nmail.test"
    view = read_view(dsn)
    if ret == "FULL":
        assert "only its beginning (1.0 MiB) is attached" in view.text
        assert QUOTE_LIMIT < len(dsn) < QUOTE_LIMIT + 64 * 1024
    else:
        assert "The headers of your original message are attached." in view.text
        assert len(dsn) < 16 * 1024
    # Before: the whole body read, and the notice built around it: 45 MiB (HDRS), 100 (FULL).
    assert growth[0] < 8 * MIB, f"peak RSS grew by {growth[0] / MIB:.1f} MiB"
    print(f"peak RSS growth, RET={ret}: {growth[0] / MIB:.1f} MiB")
    assert notice_original.PIECE <= 64 * 1024
