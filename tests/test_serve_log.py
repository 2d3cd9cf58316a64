"""`nmail serve` logs to stderr: time, process role, level; strangers' controls escaped."""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from pathlib import Path

from nmail.cli.serve_log import ServeLogFormatter, set_role
from serve_process import ServeProcess
from support import free_port
from test_cli_serve import data, listeners_off  # noqa: F401  (fixture)

LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (main|worker-\d+|index|web)\[\d+\] [A-Z]+ ")
RAW = ("\x1b", "\x9b", "\u202e", "\u2066")


def test_the_formatter_escapes_controls_and_keeps_one_line() -> None:
    set_role("worker-3")
    try:
        record = logging.LogRecord("nmail.x", logging.INFO, __file__, 1,
                                   "EHLO %s\r\nforged line", ("ev\x1b[2J\x9bil\u202etxt",), None)
        text = ServeLogFormatter().format(record)
    finally:
        set_role("main")
    assert LINE.match(text) and " worker-3[" in text
    assert text.endswith("INFO nmail.x: EHLO ev\\x1b[2J\\x9bil\\u202etxt\\x0d\\x0aforged line")
    try:
        raise ValueError("bad \u2066 value")
    except ValueError:
        record = logging.LogRecord("nmail.x", logging.ERROR, __file__, 1, "boom", (),
                                   sys.exc_info())
    text = ServeLogFormatter().format(record)
    assert "ValueError: bad \\u2066 value" in text and "\u2066" not in text


def test_serve_logs_tightening_and_info_lines_escaped_with_role(data: Path) -> None:  # noqa: F811
    """A world-readable file with a hostile name, then a POP3 login refused (INFO)."""
    listeners_off(data)
    hostile = data / "notes\x1b[2J\u202etxt.exe"
    hostile.write_text("x")
    os.chmod(hostile, 0o644)
    port = free_port()
    srv = ServeProcess(data, f"pop3=127.0.0.1:{port}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            reader = client.makefile("rb")
            assert reader.readline().startswith(b"+OK")
            client.sendall(b"USER nobody@example.com\r\n")
            assert reader.readline().startswith(b"+OK")
            client.sendall(b"PASS wrong\r\n")
            assert reader.readline().startswith(b"-ERR")
            client.sendall(b"QUIT\r\n")
            assert reader.readline().startswith(b"+OK")
    finally:
        assert srv.stop()[0] == 0
    err = srv.stderr_text
    for char in RAW:
        assert char not in err, f"{char!r} reached stderr"
    lines = err.splitlines()
    tightened = [line for line in lines if "permissions tightened" in line]
    assert len(tightened) == 1, err
    assert LINE.match(tightened[0]) and " main[" in tightened[0]
    assert "notes\\x1b[2J\\u202etxt.exe was 0644, now 0600" in tightened[0]
    refused = [line for line in lines if "POP3 login refused" in line]
    assert refused and LINE.match(refused[0]) and " INFO nmail." in refused[0], err
