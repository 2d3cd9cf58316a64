"""A data directory for `nmail serve` run as a command: made, configured, with users."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

from serve_process import NMAIL
from support import free_port

PASSWORD = "Correct-horse-9"


def nmail(data: Path, *args: str) -> str:
    """Run `nmail --data DATA ARGS`; its output, or AssertionError with its stderr."""
    done = subprocess.run(
        [*NMAIL, "--data", str(data), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_data(tmp_path: Path, *users: str, database_url: str | None = None) -> Path:
    """An initialized data directory (every [listen] entry off) with `users` (user@domain),
    on `database_url` when given (else SQLite in the data directory)."""
    data = tmp_path / "data"
    database = ["--database-url", database_url] if database_url else []
    nmail(data, "init", "--hostname", "mail.example.com", "--postmaster-password", PASSWORD,
          *database)
    cfg = data / "nmail.toml"
    cfg.write_text(re.sub(r'(?m)^(\w+) = "0\.0\.0\.0"$', r'\1 = "off"', cfg.read_text()))
    domains: set[str] = set()
    for address in users:
        userid, domain = address.split("@")
        if domain not in domains:
            nmail(data, "domain", "add", domain)
            domains.add(domain)
        nmail(data, "user", "add", domain, userid.title(), userid, PASSWORD)
    return data


def set_option(data: Path, section: str, key: str, value: str) -> None:
    """Set `key = value` (TOML text) in [section] of nmail.toml, replacing a line there."""
    cfg = data / "nmail.toml"
    text = cfg.read_text()
    head = f"[{section}]\n"
    if head not in text:
        text += f"\n{head}"
    start = text.index(head) + len(head)
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end + 1
    body = re.sub(rf"(?m)^{re.escape(key)} = .*\n", "", text[start:end])
    cfg.write_text(text[:start] + f"{key} = {value}\n" + body + text[end:])


def listen_specs(*names: str) -> dict[str, int]:
    """A free loopback port for each listener name."""
    return {name: free_port() for name in names}


def as_options(ports: dict[str, int]) -> list[str]:
    return [f"{name}=127.0.0.1:{port}" for name, port in ports.items()]


def smtp_reply(sock: socket.socket) -> bytes:
    """One whole SMTP reply (every line of it), or what came before the server closed."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
        last = data.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1]
        if data.endswith(b"\r\n") and len(last) >= 4 and last[3:4] == b" ":
            return data
