"""The end of data answered without the session's task (smtp_answers, smtp_session).

When the backend starts storing a message from the loop (accept_now), the
reply waits for the store's Future, held here by the test: no 250 before it
is done, the commands the client pipelined after the message wait too and
are answered in order after it, and a plain client (EHLO, MAIL, RCPT, DATA,
QUIT) never gets a task. The store may finish on the loop's thread or on
another (a writer thread); a client that leaves, a server that stops, a
store that says "nothing stored" or fails all end as they did when a task
waited for the commit.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pytest

from nmail.config import SmtpSettings
from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.model import Resolution
from nmail.policy.decision import Decision
from nmail.servers.smtp import SmtpServer, SmtpServerSettings
from nmail.servers.smtp_backend import InlineChecks
from smtp_rig import RecordingBackend, ServerRig, read_reply
from support import wait_until

MESSAGE = b"Subject: hi\r\n\r\nHello Bob.\r\n.\r\n"
STORED = Decision(250, "2.0.0", "Ok: queued as INLINE")
UNSET: Any = object()


class Held:
    """A PendingDecision whose `stored` the test completes."""

    def __init__(self, answer: Any, done: bool) -> None:
        self.stored: Future[Any] = Future()
        self.answer = answer  # a Decision, None (nothing stored) or an exception
        self.asked = 0
        self.asked_when_done: list[bool] = []
        if done:
            self.stored.set_result(None)

    def decision(self) -> Decision | None:
        self.asked += 1
        self.asked_when_done.append(self.stored.done())
        if isinstance(self.answer, Exception):
            raise self.answer
        answer: Decision | None = self.answer
        return answer


@dataclass
class HoldingBackend(RecordingBackend):
    """Answers MAIL and RCPT from memory; holds each message's store for the test."""

    answer: Any = STORED
    done_at_once: bool = False
    held: list[Held] = field(default_factory=list)

    def check_sender_now(
        self, client: ClientInfo, sender: str, size_hint: int | None
    ) -> Decision | None:
        return self.check_sender(client, sender, size_hint)

    def check_recipient_now(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None] | None:
        return self.check_recipient(client, sender, address, size_hint)

    def accept_now(self, envelope: Envelope, content: bytes) -> Held | None:
        held = Held(self.answer, self.done_at_once)
        with self.lock:
            self.held.append(held)
        return held


@pytest.fixture(params=["asyncio", "uvloop"])
def rig(request: pytest.FixtureRequest) -> Iterator[ServerRig]:
    server_rig = ServerRig(request.param)
    yield server_rig
    server_rig.close()


def start(rig: ServerRig, backend: HoldingBackend) -> SmtpServer:
    assert isinstance(backend, InlineChecks)
    return rig.start(SmtpServerSettings("smtp", "mx.test", SmtpSettings()), backend)


def tasks(server: SmtpServer) -> list[Any]:
    """The open sessions' tasks (None: the session has none)."""
    return [session.task for session in list(server._sessions)]


def up_to_data(server: SmtpServer) -> tuple[socket.socket, bytearray]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    buf = bytearray()
    assert read_reply(sock, buf).startswith("220 mx.test")
    for command, reply in (
        (b"EHLO c.test\r\n", "250"),
        (b"MAIL FROM:<a@example.org>\r\n", "250 2.1.0"),
        (b"RCPT TO:<bob@test.local>\r\n", "250 2.1.5"),
        (b"DATA\r\n", "354"),
    ):
        sock.sendall(command)
        assert read_reply(sock, buf).split("\r\n")[-1].startswith(reply)
    return sock, buf


def held(backend: HoldingBackend, count: int = 1) -> Held:
    wait_until(lambda: len(backend.held) == count, what="the message's store started")
    return backend.held[count - 1]


def finish_elsewhere(store: Held) -> None:
    """The store says done from another thread (an index writer thread)."""
    thread = threading.Thread(target=store.stored.set_result, args=(None,))
    thread.start()
    thread.join()


def nothing_more_yet(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(100)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def test_a_plain_client_gets_its_250_after_the_store_and_never_a_task(rig: ServerRig) -> None:
    backend = HoldingBackend()
    server = start(rig, backend)
    sock, buf = up_to_data(server)
    assert tasks(server) == [None]
    sock.sendall(MESSAGE)
    store = held(backend)
    assert store.asked == 0 and nothing_more_yet(sock)
    assert tasks(server) == [None]  # nobody waits: the store's callback answers
    finish_elsewhere(store)
    assert read_reply(sock, buf) == "250 2.0.0 Ok: queued as INLINE"
    assert store.asked_when_done == [True]
    assert tasks(server) == [None]
    sock.sendall(b"QUIT\r\n")
    assert read_reply(sock, buf).startswith("221")
    assert sock.recv(10) == b""
    wait_until(lambda: server.sessions == 0)
    sock.close()


@pytest.mark.parametrize("on_the_loop", [True, False], ids=["loop thread", "other thread"])
def test_what_was_pipelined_after_the_message_waits_for_its_answer(
    rig: ServerRig, on_the_loop: bool
) -> None:
    backend = HoldingBackend()
    server = start(rig, backend)
    sock, buf = up_to_data(server)
    sock.sendall(MESSAGE + b"MAIL FROM:<b@example.org>\r\nRCPT TO:<bob@test.local>\r\n"
                 b"DATA\r\n" + MESSAGE + b"QUIT\r\n")
    first = held(backend)
    assert backend.senders_seen == ["a@example.org"] and nothing_more_yet(sock)
    if on_the_loop:
        rig.loop.loop.call_soon_threadsafe(first.stored.set_result, None)
    else:
        finish_elsewhere(first)
    assert read_reply(sock, buf) == "250 2.0.0 Ok: queued as INLINE"
    assert read_reply(sock, buf) == "250 2.1.0 Sender OK"
    assert read_reply(sock, buf) == "250 2.1.5 Recipient OK"
    assert read_reply(sock, buf).startswith("354")
    second = held(backend, 2)
    assert nothing_more_yet(sock)
    finish_elsewhere(second)
    assert read_reply(sock, buf) == "250 2.0.0 Ok: queued as INLINE"
    assert read_reply(sock, buf).startswith("221")
    assert sock.recv(10) == b""
    assert backend.accepted == []  # never the blocking path
    wait_until(lambda: server.sessions == 0)
    sock.close()


def test_a_store_done_at_once_is_answered_at_once(rig: ServerRig) -> None:
    refusal = Decision(554, "5.6.0", "Refused at once")
    backend = HoldingBackend(answer=refusal, done_at_once=True)
    server = start(rig, backend)
    sock, buf = up_to_data(server)
    sock.sendall(MESSAGE + b"QUIT\r\n")
    assert read_reply(sock, buf) == "554 5.6.0 Refused at once"
    assert read_reply(sock, buf).startswith("221")
    assert held(backend).asked == 1
    sock.close()


def test_nothing_stored_takes_the_blocking_path(rig: ServerRig) -> None:
    backend = HoldingBackend(answer=None)
    server = start(rig, backend)
    sock, buf = up_to_data(server)
    sock.sendall(MESSAGE)
    finish_elsewhere(held(backend))
    assert read_reply(sock, buf) == "250 2.0.0 Ok: queued as T1"
    assert [content for _, content in backend.accepted] == [b"Subject: hi\r\n\r\nHello Bob.\r\n"]
    sock.sendall(b"QUIT\r\n")
    assert read_reply(sock, buf).startswith("221")
    sock.close()


@pytest.mark.parametrize("answer", [STORED, None], ids=["stored", "nothing stored"])
def test_a_client_that_leaves_while_its_message_is_stored(rig: ServerRig, answer: Any) -> None:
    """The outcome is still taken (and logged) once the store is done, and a
    message the store passed back is still accepted in a thread, as when a
    task waited; the session ends after that."""
    backend = HoldingBackend(answer=answer)
    server = start(rig, backend)
    sock, _ = up_to_data(server)
    sock.sendall(MESSAGE)
    store = held(backend)
    sock.close()
    finish_elsewhere(store)
    wait_until(lambda: server.sessions == 0, what="the session ended")
    assert store.asked == 1
    assert len(backend.accepted) == (1 if answer is None else 0)


def test_a_stop_while_a_message_is_stored_waits_for_it_then_421(rig: ServerRig) -> None:
    backend = HoldingBackend()
    server = start(rig, backend)
    sock, buf = up_to_data(server)
    sock.sendall(MESSAGE)
    store = held(backend)
    closing = rig.loop.submit(server.close(grace=30))
    wait_until(lambda: server.closing)
    assert nothing_more_yet(sock) and not closing.done()
    finish_elsewhere(store)
    assert read_reply(sock, buf) == "250 2.0.0 Ok: queued as INLINE"
    assert read_reply(sock, buf) == "421 4.3.2 Service shutting down"
    closing.result(timeout=10)
    assert sock.recv(10) == b""
    sock.close()


def test_a_failing_decision_is_a_temporary_error(
    rig: ServerRig, caplog: pytest.LogCaptureFixture
) -> None:
    backend = HoldingBackend(answer=RuntimeError("index on fire"))
    server = start(rig, backend)
    sock, buf = up_to_data(server)
    sock.sendall(MESSAGE)
    finish_elsewhere(held(backend))
    assert read_reply(sock, buf) == "451 4.3.0 Temporary local error"
    assert "SMTP accept from 127.0.0.1 failed" in caplog.text
    # Not tried again through accept(): it may be stored.
    assert backend.accepted == []
    sock.sendall(b"QUIT\r\n")
    assert read_reply(sock, buf).startswith("221")
    sock.close()
