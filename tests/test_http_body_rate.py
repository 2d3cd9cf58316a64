"""The http listener: a request body must keep coming (issue 9 item 6, the same class).

A head sent in time, then a body of a byte now and then, held a connection
for ever: a few addresses could hold every connection the listener allows.
Driven over sockets against the real `nmail serve`.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from serve_process import ServeProcess
from serve_setup import as_options, listen_specs, make_data, set_option
from support import closed_after


def test_a_trickling_body_is_cut_off(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    set_option(data, "http", "header_timeout", '"1s"')
    ports = listen_specs("http")
    srv = ServeProcess(data, *as_options(ports))
    try:
        with socket.create_connection(("127.0.0.1", ports["http"]), timeout=10) as sock:
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: mail.example.com\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: 5000\r\n\r\nuserid=")
            # A byte every 0.1 s would keep it open for 20 s: cut off at the 1 s timeout.
            closed_after(sock, b"a", 0.1, 200)
        # A body sent at once is served as before.
        answer = httpx.post(f"http://127.0.0.1:{ports['http']}/login",
                            data={"userid": "bob", "password": "x"},
                            headers={"Host": "mail.example.com"}, timeout=10)
        assert answer.status_code == 403  # no session, so no CSRF token: refused, not cut
    finally:
        assert srv.stop()[0] == 0
