"""The quota is checked against the message itself at end of DATA, not only SIZE=."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server_rig import RunningServer, make_data_dir

QUOTA = 20_000


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(make_data_dir(tmp_path), listeners=("smtp",)) as server:
        server.add_user("small@test.local", quota=QUOTA)
        server.add_user("roomy@test.local")
        yield server


def message(size: int) -> bytes:
    head = b"From: a@example.org\r\nSubject: big\r\n\r\n"
    line = b"x" * 78 + b"\r\n"
    return head + line * (size // len(line))


def count(srv: RunningServer, address: str) -> int:
    return len(list((srv.maildir(address) / "new").iterdir()))


def send(srv: RunningServer, rcpts: list[str], data: bytes) -> tuple[int, bytes]:
    with srv.smtp("smtp") as client:
        client.ehlo("c.example.org")
        assert client.mail("a@example.org")[0] == 250  # no SIZE= announced
        for rcpt in rcpts:
            assert client.rcpt(rcpt)[0] == 250
        return client.data(data)


def test_a_message_past_the_quota_is_refused_whole(srv: RunningServer) -> None:
    code, text = send(srv, ["small@test.local"], message(QUOTA + 5_000))
    assert (code, text[:5]) == (552, b"5.2.2")
    assert count(srv, "small@test.local") == 0
    # one full mailbox among several: nobody gets it, the sender retries later
    code, text = send(srv, ["roomy@test.local", "small@test.local"], message(QUOTA + 5_000))
    assert (code, text[:5]) == (452, b"4.2.2") and b"small@test.local" in text
    assert count(srv, "roomy@test.local") == 0
    # what fits is delivered, and counts against what is left
    assert send(srv, ["small@test.local"], message(QUOTA // 2))[0] == 250
    assert count(srv, "small@test.local") == 1
    assert send(srv, ["small@test.local"], message(QUOTA // 2 + 2_000))[0] == 552
    assert send(srv, ["roomy@test.local", "small@test.local"], message(1_000))[0] == 250
    assert (count(srv, "small@test.local"), count(srv, "roomy@test.local")) == (2, 1)
