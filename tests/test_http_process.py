"""Issue 9 item 6 / issue 11: the web app in its own process, behind limits.

Driven over sockets against the real `nmail serve`: 1,100 idle HTTP
connections (with the server's descriptor limit at 1,024) leave POP3 and
submission working, the [http] limits hold, a request head has a deadline
however slowly it trickles, every process runs with the soft descriptor
limit raised to the hard one, and the web process is restarted when it dies.
"""

from __future__ import annotations

import os
import poplib
import signal
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proc_tree import descendants, holders, open_file_limit
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data, set_option
from support import closed_after, wait_until

USER = "bob@test.local"


def healthz(port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code


def got_refusal(sock: socket.socket) -> bool:
    try:
        return sock.recv(64, socket.MSG_PEEK | socket.MSG_DONTWAIT).startswith(b"HTTP/1.1 503")
    except (BlockingIOError, TimeoutError):  # nothing received
        return False


def pop3_login_works(port: int) -> None:
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        client.user(USER)
        assert client.pass_(PASSWORD).startswith(b"+OK")
        client.stat()
    finally:
        client.quit()


def submission_works(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.login(USER, PASSWORD)
        refused = client.sendmail(
            USER, [USER], b"From: bob@test.local\r\nSubject: hi\r\n\r\nstill here\r\n"
        )
        assert refused == {}


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def test_idle_http_connections_do_not_stop_pop3_or_submission(
    tmp_path: Path, held: list[socket.socket]
) -> None:
    data = make_data(tmp_path, USER)
    set_option(data, "http", "max_connections", "900")
    set_option(data, "http", "header_timeout", '"10m"')  # idle, but not closed in this test
    ports = listen_specs("submission", "pop3", "http")
    srv = ServeProcess(data, *as_options(ports), open_files=(1024, 1024))
    try:
        for _ in range(1100):
            sock = socket.create_connection(("127.0.0.1", ports["http"]), timeout=10)
            sock.setblocking(False)  # got_refusal only looks at what arrived
            held.append(sock)
        # The 900 first are served (and idle), every one past the limit gets one 503.
        wait_until(lambda: sum(got_refusal(s) for s in held) == 200, 60, "200 refused connections")
        assert not any(got_refusal(s) for s in held[:900])
        pop3_login_works(ports["pop3"])
        submission_works(ports["submission"])
        assert healthz(ports["http"]) == 503  # still full: no new HTTP client gets in
        for sock in held[:10]:
            sock.close()
        wait_until(lambda: healthz(ports["http"]) == 200, 30, "room again after closing ten")
    finally:
        for sock in held:
            sock.close()
        status, _ = srv.stop()
    assert status == 0
    assert "http: connection from 127.0.0.1 refused: the listener's connection limit" in (
        srv.stderr_text
    )


def test_a_request_head_must_arrive_before_the_header_timeout(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    set_option(data, "http", "header_timeout", '"1s"')
    ports = listen_specs("http")
    srv = ServeProcess(data, *as_options(ports))
    try:
        with socket.create_connection(("127.0.0.1", ports["http"]), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: mail.example.com\r\nX-Slow: ")
            # A byte every 0.1 s would keep it open for 20 s: cut off at the 1 s timeout.
            closed_after(sock, b"a", 0.1, 200)
        with socket.create_connection(("127.0.0.1", ports["http"]), timeout=10) as idle:
            idle.settimeout(30)
            assert idle.recv(64) == b""  # sent nothing: closed at the deadline
        assert healthz(ports["http"]) == 200  # a client that sends its request is served
    finally:
        assert srv.stop()[0] == 0


def test_every_process_raises_its_soft_descriptor_limit(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    ports = listen_specs("smtp", "pop3", "http")
    srv = ServeProcess(data, *as_options(ports), workers=2, open_files=(256, 4096))
    try:
        pids = [srv.proc.pid, *descendants(srv.proc.pid)]
        assert len(pids) == 6  # supervisor, index writer, two workers, search, the web process
        assert {open_file_limit(pid) for pid in pids} == {(4096, 4096)}
    finally:
        assert srv.stop()[0] == 0


def test_the_web_runs_in_its_own_process_and_is_restarted(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    ports = listen_specs("pop3", "http")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        children = descendants(srv.proc.pid)
        web = holders(children, ports["http"])
        mail = holders(children, ports["pop3"])
        assert len(web) == 1 and len(mail) == 1 and web != mail
        assert healthz(ports["http"]) == 200
        os.kill(web[0], signal.SIGKILL)
        wait_until(
            lambda: holders(descendants(srv.proc.pid), ports["http"]) not in ([], web),
            30,
            "a new web process",
        )

        def answers() -> bool:
            try:
                return healthz(ports["http"]) == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, 30, "the new web process answers")
        assert holders(descendants(srv.proc.pid), ports["pop3"]) == mail
    finally:
        assert srv.stop()[0] == 0


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("max_connections", "0", "[http] max_connections: expected 1"),
        ("header_timeout", '"0s"', "[http] header_timeout: expected at least 1 second"),
        ("header_timeout", '"soon"', "[http] header_timeout: expected a duration"),
        ("max_clients", "5", "[http] max_clients: unknown key"),
    ],
)
def test_bad_http_settings_are_refused_with_the_key(
    tmp_path: Path, key: str, value: str, error: str
) -> None:
    from nmail.config import ConfigError, load_config

    data = make_data(tmp_path)
    set_option(data, "http", key, value)
    with pytest.raises(ConfigError) as caught:
        load_config(data)
    assert error in str(caught.value)
