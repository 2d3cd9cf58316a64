"""Issue 9 item 10: `nmail serve` stops within its deadline, whatever its clients do.

Sessions that dropped mid-DATA, sessions stalled mid-DATA, logins held in
their failure delay (SMTP AUTH and POP3), idle HTTP connections and TLS
handshakes never begun on 465 and 995: at
SIGTERM every process must be gone within `[server] stop_timeout` plus the
supervisor's margin, the stalled clients told 421. And when the supervisor
is killed during a stop, its children must go too, without spinning.
"""

from __future__ import annotations

import base64
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from proc_tree import alive, cpu_ticks, descendants
from serve_process import ServeProcess
from serve_setup import as_options, listen_specs, make_data, set_option, smtp_reply
from support import wait_until

USER = "bob@test.local"
STOP_MARGIN = 15.0  # what a loaded machine may add to the deadline, never near 30 s


def smtp_in_data(port: int) -> socket.socket:
    """A session that has sent 100 KB of a message after DATA's 354."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    smtp_reply(sock)
    for command in (
        b"EHLO client.test",
        b"MAIL FROM:<a@b.example>",
        f"RCPT TO:<{USER}>".encode(),
        b"DATA",
    ):
        sock.sendall(command + b"\r\n")
        assert smtp_reply(sock)[:1] in (b"2", b"3")
    sock.sendall(b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n" * 100)
    return sock


def wrong_logins(ports: dict[str, int], held: list[socket.socket]) -> None:
    """Failed logins that the server holds back in a delay (several at once, so
    the later ones wait longer)."""
    token = base64.b64encode(f"\0{USER}\0wrong-password".encode())
    for _ in range(6):
        sock = socket.create_connection(("127.0.0.1", ports["submission"]), timeout=30)
        smtp_reply(sock)
        sock.sendall(b"EHLO client.test\r\n")
        smtp_reply(sock)
        sock.sendall(b"AUTH PLAIN " + token + b"\r\n")
        held.append(sock)
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", ports["pop3"]), timeout=30)
        sock.recv(512)
        sock.sendall(f"USER {USER}\r\nPASS wrong-password\r\n".encode())
        held.append(sock)


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def busy_server(
    tmp_path: Path, stop_timeout: str, held: list[socket.socket]
) -> tuple[ServeProcess, list[socket.socket]]:
    data = make_data(tmp_path, USER)
    set_option(data, "server", "stop_timeout", stop_timeout)
    ports = listen_specs("smtp", "submission", "submissions", "pop3", "pop3s", "http")
    srv = ServeProcess(data, *as_options(ports), workers=2)
    for door in ("submissions", "pop3s"):  # TLS handshakes never begun
        for _ in range(5):
            held.append(socket.create_connection(("127.0.0.1", ports[door]), timeout=30))
    for _ in range(5):  # dropped mid-DATA
        smtp_in_data(ports["smtp"]).close()
    stalled = [smtp_in_data(ports["smtp"]) for _ in range(3)]
    held += stalled
    wrong_logins(ports, held)
    for _ in range(5):  # idle HTTP
        held.append(socket.create_connection(("127.0.0.1", ports["http"]), timeout=30))
    return srv, stalled


def test_stop_ends_every_process_within_the_deadline(
    tmp_path: Path, held: list[socket.socket]
) -> None:
    srv, stalled = busy_server(tmp_path, '"2s"', held)
    children = descendants(srv.proc.pid)
    assert len(children) == 5  # index writer, two workers, search, web
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=2 + STOP_MARGIN)
    assert srv.proc.returncode == 0
    wait_until(lambda: not any(alive(pid) for pid in children), STOP_MARGIN, "children gone")
    for sock in stalled:
        said = b""
        while chunk := sock.recv(4096):
            said += chunk
        assert said.startswith(b"421 "), said


def test_children_end_when_the_supervisor_is_killed_during_a_stop(
    tmp_path: Path, held: list[socket.socket]
) -> None:
    srv, _ = busy_server(tmp_path, '"10s"', held)
    children = descendants(srv.proc.pid)
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.stdout is not None
    assert "stopping" in srv.proc.stdout.readline()
    srv.proc.kill()
    srv.proc.wait(timeout=30)
    start = {pid: cpu_ticks(pid) for pid in children}
    used = dict.fromkeys(children, 0)

    def all_gone() -> bool:
        for pid in children:
            if alive(pid):
                used[pid] = max(used[pid], cpu_ticks(pid) - start[pid])
        return not any(alive(pid) for pid in children)

    wait_until(all_gone, 10 + 5 + STOP_MARGIN, "children gone after the supervisor")
    # A child spinning on a closed pipe would burn a core until the deadline.
    assert max(used.values()) < 300, used
