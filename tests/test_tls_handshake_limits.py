"""Half-open TLS handshakes count against the listener's limits (issue 9 items 2, 6).

On the implicit-TLS ports (465, 995) a client that connects and never sends
a ClientHello was counted nowhere until the handshake timeout: any number of
them held file descriptors while the limit said the listener was empty.
"""

from __future__ import annotations

import poplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from server_rig import PASSWORD, RunningServer, insecure_context, make_data_dir
from support import wait_until

pytestmark = pytest.mark.timeout(120)
LIMIT = 3


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    data = make_data_dir(tmp_path)
    cfg = data / "nmail.toml"
    text = cfg.read_text()
    for door in ("SMTP", "POP3"):
        marker = f"max_connections = 1000        # open {door}"
        assert marker in text
        text = text.replace(marker, f"max_connections = {LIMIT}        # open {door}")
    cfg.write_text(text)
    with RunningServer(data) as srv:
        srv.add_user("bob@test.local")
        yield srv


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server hung up on `sock` (which has sent nothing)."""
    sock.settimeout(5.0)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def pop3s_login(srv: RunningServer) -> bytes:
    client = poplib.POP3_SSL("127.0.0.1", srv.port("pop3s"), context=insecure_context(),
                             timeout=10)
    try:
        client.user("bob@test.local")
        return client.pass_(PASSWORD)
    finally:
        client.quit()


def smtps_login(srv: RunningServer) -> int:
    client = srv.smtp("submissions")
    try:
        return client.login("bob@test.local", PASSWORD)[0]
    finally:
        client.quit()


@pytest.mark.parametrize("door", ["submissions", "pop3s"])
def test_silent_handshakes_fill_the_listener_and_no_more_are_held(
    server: RunningServer, door: str
) -> None:
    silent = [socket.create_connection(("127.0.0.1", server.port(door))) for _ in range(LIMIT)]
    try:
        extra = socket.create_connection(("127.0.0.1", server.port(door)))
        with extra:
            assert closed_by_server(extra), "a connection past the limit was held"
    finally:
        for sock in silent:
            sock.close()
    # Once the silent ones are gone, real clients are served again.
    login = smtps_login if door == "submissions" else pop3s_login

    def logs_in() -> bool:
        try:
            login(server)
        except (OSError, poplib.error_proto):
            return False
        return True

    wait_until(logs_in, what=f"a {door} login after the silent clients left")


def test_a_pop3s_client_that_talks_at_once_is_served(server: RunningServer) -> None:
    assert pop3s_login(server).startswith(b"+OK")
    assert smtps_login(server) == 235
