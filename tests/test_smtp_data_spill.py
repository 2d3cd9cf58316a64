"""Issue 9 item 2: a large message waits in a spill, not in memory, as it arrives.

The reader with a spill must give exactly what it gives without one (the
same content, or a refusal, and the same bytes left for the next command)
for any message cut into any reads, while never holding more than about
`spill_at` bytes in its buffer; an abandoned message lets its spill go.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.message_source import SpooledMessage
from nmail.protocols.smtp.data import DataReader
from nmail.protocols.smtp.replies import TEXT_LINE_TOO_LONG, Reply
from nmail.servers.data_spool import spill_factory

SPILL_AT = 2048


class ListSpill:
    """A BodySpill in memory, for the reader's own tests; counts what it holds."""

    made: ClassVar[list[ListSpill]] = []

    def __init__(self) -> None:
        self.pieces: list[bytes] | None = []
        ListSpill.made.append(self)

    def write(self, content: bytes) -> None:
        assert self.pieces is not None
        self.pieces.append(content)

    def finish(self) -> bytes:
        assert self.pieces is not None
        content, self.pieces = b"".join(self.pieces), None  # handed on: let go here
        return content

    def discard(self) -> None:
        self.pieces = None


def run(reader: DataReader, chunks: list[bytes]) -> tuple[bytes | Reply | None, bytes, int]:
    """Feed the chunks; (result, what is left in the buffer, the largest buffer seen)."""
    buf = bytearray()
    result: bytes | Reply | None = None
    largest = 0
    for chunk in chunks:
        buf += chunk
        largest = max(largest, len(buf))
        result = reader.scan(buf)
        if result is not None:
            break
    return result, bytes(buf), largest


line = st.one_of(
    st.just(b"."),
    st.just(b".."),
    st.just(b""),
    st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\r", b"r").replace(b"\n", b"n")),
    st.integers(min_value=900, max_value=1100).map(lambda n: b"." + b"x" * n),
)
ending = st.sampled_from([b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n"])


@st.composite
def message(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    lines = draw(st.lists(st.tuples(line, ending), min_size=0, max_size=60))
    body = b"".join(text + end for text, end in lines) + b".\r\nNOOP\r\n"
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=12)))
    return body, cuts


@settings(max_examples=1000, deadline=None)
@given(message(), st.integers(min_value=500, max_value=40_000))
def test_a_spilled_message_reads_as_one_kept_in_memory(
    sample: tuple[bytes, list[int]], max_size: int
) -> None:
    body, cuts = sample
    bounds = [0, *cuts, len(body)]
    chunks = [body[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    expected, rest, _ = run(DataReader(max_size), chunks)
    ListSpill.made = []
    reader = DataReader(max_size, ListSpill, SPILL_AT)
    got, got_rest, largest = run(reader, chunks)
    if got is None:
        reader.discard()  # unfinished: the session lets it go when it ends
    if isinstance(expected, Reply):
        assert isinstance(got, Reply)
    else:
        assert got == expected
    if expected is not None:  # an unfinished message's bytes may be dropped at other points
        assert got_rest == rest
    assert largest <= SPILL_AT + max(len(c) for c in chunks)
    assert all(spill.pieces is None for spill in ListSpill.made)  # every spill let go


def test_a_big_message_never_fills_the_buffer() -> None:
    line = b"y" * 998 + b"\r\n"
    reader = DataReader(50 << 20, ListSpill, SPILL_AT)
    buf = bytearray()
    for _ in range(5000):  # 5 MB in reads of one line
        buf += line
        assert reader.scan(buf) is None
        assert len(buf) <= SPILL_AT + len(line)
    buf += b".\r\n"
    assert reader.scan(buf) == line * 5000


def test_one_endless_line_is_dropped_as_it_comes_and_refused() -> None:
    ListSpill.made = []
    reader = DataReader(50 << 20, ListSpill, SPILL_AT)
    buf = bytearray()
    for _ in range(1000):
        buf += b"z" * 1000
        assert reader.scan(buf) is None
        assert len(buf) <= SPILL_AT + 1000
    buf += b"\r\n.\r\nQUIT\r\n"
    refusal = reader.scan(buf)
    assert refusal == TEXT_LINE_TOO_LONG
    assert buf == bytearray(b"QUIT\r\n")


def test_an_abandoned_message_lets_its_spill_go() -> None:
    ListSpill.made = []
    reader = DataReader(50 << 20, ListSpill, SPILL_AT)
    buf = bytearray(b"w" * 70 + b"\r\n") * 100
    assert reader.scan(buf) is None
    assert ListSpill.made and ListSpill.made[0].pieces
    reader.discard()
    assert ListSpill.made[0].pieces is None


def test_the_file_spill_leaves_no_file(tmp_path: Path) -> None:
    make = spill_factory(tmp_path / "spool")
    spill = make()
    spill.write(b"one\r\n")
    spill.write(b"two\r\n")
    assert list((tmp_path / "spool").iterdir()) == []  # nameless
    message = spill.finish()  # the file is the message's now
    spill.discard()  # harmless after finish
    assert isinstance(message, SpooledMessage) and len(message) == 10
    assert message.head() == b"one\r\ntwo\r\n"
    assert b"".join(message.prefixed(b"P: 1\r\n").chunks(chunk=3)) == b"P: 1\r\none\r\ntwo\r\n"
    message.close()
    spare = make()
    spare.discard()
    spare.discard()  # twice is harmless


class FullDiskSpill(ListSpill):
    """A spill whose disk fills up after the first piece."""

    def write(self, content: bytes) -> None:
        if self.pieces:
            raise OSError(28, "No space left on device")
        super().write(content)


def test_a_full_spool_disk_refuses_the_message_with_452_and_stays_in_step() -> None:
    ListSpill.made = []
    reader = DataReader(50 << 20, FullDiskSpill, SPILL_AT)
    buf = bytearray((b"v" * 98 + b"\r\n") * 200)
    assert reader.scan(buf) is None
    buf += b"last line\r\n.\r\nQUIT\r\n"
    refusal = reader.scan(buf)
    assert isinstance(refusal, Reply) and refusal.code == 452
    assert buf == bytearray(b"QUIT\r\n")
    assert all(spill.pieces is None for spill in ListSpill.made)
