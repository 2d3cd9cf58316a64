"""kill -9 of every process of `nmail serve` while its outbound queue delivers.

SMTP clients on 127.0.0.1 (a relay network by default) send mail for
`remote.example`, which `[transport]` routes to a sink on 127.0.0.1 (nothing
leaves loopback); the sink answers each DATA after a few milliseconds, as a
remote server would, so that kills land inside delivery attempts too. Every
process of the server is killed at once right after a message was queued
(250) or right after the sink took one. After each restart:

- every recipient of every message that got 250 reaches the sink, with the
  body that was sent, and the queue's rows all end `delivered`: nothing
  stuck, failed or set aside in `queue/corrupt/`;
- a recipient reaches the sink twice only when the kill came after the sink
  took it and before the queue recorded the delivery (the row not yet
  `delivered` at the kill): SMTP cannot tell that apart from a lost reply.
  The test counts those and prints them;
- no body is left in `queue/` for a message whose rows are all finished
  (bodies without rows, of messages the kill cut before their 250, are
  counted: queue/recovery.py sends them once they are two minutes old).
"""

from __future__ import annotations

import asyncio
import os
import random
import smtplib
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

import test_serve_kill as base
from fixtures_smtp_sink import Received, SmtpSink
from nmail.db.tables import queue_recipients
from nmail.queue import envelope_line
from serve_kill_load import message
from serve_kill_rig import ClientThreads, KilledServe
from serve_setup import listen_specs, set_option
from support import LoopThread, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROUNDS = int(os.environ.get("NMAIL_TEST_KILL_ROUNDS", "2"))  # more for a soak
REMOTE = [f"r{n}@remote.example" for n in range(8)]
MOMENTS = ("queued", "sent")
Key = tuple[str, str]  # (Message-ID, recipient)


@dataclass
class Outbound:
    """What the senders were told and what the sink took, shared by threads."""

    acked: set[Key] = field(default_factory=set)
    bodies: dict[str, bytes] = field(default_factory=dict)  # Message-ID -> what was sent
    received: Counter[Key] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def fail(self, text: str) -> None:
        with self.cond:
            self.errors.append(text)
            self.cond.notify_all()

    def wait_for(self, kind: str, more: int, deadline: float) -> None:
        with self.cond:
            goal = self.counts[kind] + more
            assert self.cond.wait_for(lambda: self.counts[kind] >= goal or self.errors,
                                      deadline), f"timed out waiting for {kind}: {self.counts}"
            assert not self.errors, self.errors[:3]


def _message_id(data: bytes) -> str:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


class Senders:
    """SMTP clients queueing mail for remote.example until stopped."""

    def __init__(self, port: int, outbound: Outbound, seed: int, count: int = 2) -> None:
        self._clients = ClientThreads(outbound.fail, "a sender")
        self._stopping = self._clients.stopping
        self._clients.start([
            lambda n=n: self._send(port, outbound, random.Random(seed * 10 + n), f"{seed}.{n}")
            for n in range(count)])

    def stop(self) -> None:
        self._clients.stop()

    def join(self) -> None:
        self._clients.join()

    def _send(self, port: int, outbound: Outbound, rng: random.Random, tag: str) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            n = 0
            while not self._stopping.is_set():
                n += 1
                mid = f"<q{tag}.{n}@kill.test>"
                to = rng.sample(REMOTE, rng.choice((1, 1, 2, 3)))
                content = message(mid, to, rng)
                with outbound.cond:
                    outbound.bodies[mid] = content
                refused = client.sendmail("someone@elsewhere.example", to, content)
                assert refused == {}, refused
                with outbound.cond:
                    outbound.acked |= {(mid, rcpt) for rcpt in to}
                    outbound.counts["queued"] += 1
                    outbound.cond.notify_all()


def sink_for(loop: LoopThread, outbound: Outbound, rng: random.Random) -> SmtpSink:
    sink = loop.run(SmtpSink("127.0.0.1").start())

    async def took(item: Received) -> None:
        with outbound.cond:
            mid = _message_id(item.data)
            for rcpt in item.rcpts:
                outbound.received[(mid, rcpt)] += 1
            outbound.counts["sent"] += 1
            outbound.cond.notify_all()
        await asyncio.sleep(rng.uniform(0, 0.02))  # a remote server's time to answer

    sink.on_message = took
    return sink


def unfinished_at_kill(engine: Engine, queue_dir: Path) -> tuple[set[Key], list[str]]:
    """(Message-ID, recipient) of rows not `delivered` at the kill; problems seen."""
    with engine.connect() as conn:
        rows = conn.execute(select(queue_recipients.c.message_id, queue_recipients.c.recipient,
                                   queue_recipients.c.state)).all()
    keys: set[Key] = set()
    problems = []
    for queue_id, rcpt, state in rows:
        if state == "delivered":
            continue
        path = queue_dir / f"{queue_id}.eml"
        if not path.exists():
            problems.append(f"{queue_id} <{rcpt}> is {state} without its body")
            continue
        keys.add((_message_id(envelope_line.split(path.read_bytes())[1]), str(rcpt)))
    return keys, problems


def queue_settled(engine: Engine, queue_dir: Path, outbound: Outbound) -> bool:
    with outbound.cond:
        arrived = all(outbound.received[key] for key in outbound.acked)
    if not arrived:
        return False
    with engine.connect() as conn:
        states = set(conn.execute(select(queue_recipients.c.state).distinct()).scalars())
        known = set(conn.execute(select(queue_recipients.c.message_id).distinct()).scalars())
    # A finished message's body goes right after its COMMIT (or at the restart's
    # recovery, when the kill came in between).
    left = {p.name[:-4] for p in queue_dir.iterdir() if p.name.endswith(".eml")}
    return states <= {"delivered"} and not left & known


def queue_problems(engine: Engine, data: Path, outbound: Outbound, sink: SmtpSink,
                   allowed: set[Key]) -> tuple[list[str], int, int]:
    """Problems after the queue settled; the duplicates allowed and bodies without rows."""
    out = []
    queue_dir = data / "queue"
    out += [f"set aside: {p.name}" for p in sorted((queue_dir / "corrupt").iterdir())]
    with engine.connect() as conn:
        known = set(conn.execute(select(queue_recipients.c.message_id).distinct()).scalars())
    stored = [p.name[:-4] for p in queue_dir.iterdir() if p.name.endswith(".eml")]
    out += [f"{q}.eml left after its delivery" for q in stored if q in known]
    orphans = sum(1 for q in stored if q not in known)
    duplicates = 0
    with outbound.cond:
        for key, n in outbound.received.items():
            if n > 1 and key not in allowed:
                out.append(f"{key} reached the sink {n} times")
            duplicates += n - 1 if key in allowed else 0
        for item in sink.received:
            sent = outbound.bodies.get(_message_id(item.data))
            if sent is None:
                out.append(f"the sink took an unknown message {_message_id(item.data)}")
            elif not item.data.endswith(sent.split(b"\r\n\r\n", 1)[1]):
                out.append(f"{_message_id(item.data)} arrived with another body")
    return out, duplicates, orphans


def test_kill_9_while_the_queue_delivers(tmp_path: Path, db_url: str, engine: Engine) -> None:
    data = base.make_data(tmp_path, db_url, engine)
    outbound = Outbound()
    rng = random.Random(20261208)
    loop = LoopThread()
    sink = sink_for(loop, outbound, random.Random(1))
    set_option(data, "transport", '"remote.example"', f'"smtp:[127.0.0.1]:{sink.port}"')
    ports = listen_specs("smtp")
    log = tmp_path / "serve.log"
    allowed: set[Key] = set()
    report = []
    try:
        with KilledServe(data, ports, log, engine) as server:
            for round_number in range(ROUNDS):
                senders = Senders(ports["smtp"], outbound, round_number)
                try:
                    outbound.wait_for("queued", rng.randint(10, 40), 120)
                    outbound.wait_for(MOMENTS[round_number % len(MOMENTS)], 1, 60)
                finally:
                    senders.stop()
                    server.kill()
                    senders.join()
                assert not outbound.errors, outbound.errors[:5]
                # The sink has read all the dead server sent once its sessions ended.
                wait_until(lambda: sink.active == 0, 30, "the sink's sessions ended")
                with outbound.cond:
                    took = {key for key, n in outbound.received.items() if n}
                pending, problems = unfinished_at_kill(engine, data / "queue")
                assert not problems, problems[:10]
                allowed |= pending & took
                server.restart()
                wait_until(lambda: queue_settled(engine, data / "queue", outbound), 120,
                           "every queued recipient at the sink, every row delivered, no "
                           "finished message's body left")
                problems, duplicates, orphans = queue_problems(engine, data, outbound, sink,
                                                               allowed)
                assert not problems, f"round {round_number}: " + "\n".join(problems[:20])
                report.append((len(outbound.acked), duplicates, orphans))
    finally:
        loop.run(sink.stop())
        loop.close()
    print("per round (recipients queued, duplicates after the sink took them, bodies "
          "without rows):", report)
