"""A data directory for `nmail serve` run as a command: made, configured, with users."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

from datadir_copy import initialized
from nmail.accounts.service import AccountService, StoreMailboxes
from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.directory import Directory
from nmail.mailstore.store import MailStore
from nmail.permissions import PRIVATE_UMASK
from nmail.queue.dkim import DkimKeys
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
    on `database_url` when given (else SQLite in the data directory).

    Made in this process, as `nmail init`, `nmail domain add` (with its DKIM key)
    and `nmail user add` make it (passwords hashed at the default cost, as the
    command does): a CLI call for each cost a Python start, about 1 s of CPU."""
    data = tmp_path / "data"
    previous = os.umask(PRIVATE_UMASK)  # as `nmail init` runs
    try:
        initialized(data, hostname="mail.example.com", password=PASSWORD,
                    database_url=database_url)
    finally:
        os.umask(previous)
    cfg = data / "nmail.toml"
    cfg.write_text(re.sub(r'(?m)^(\w+) = "0\.0\.0\.0"$', r'\1 = "off"', cfg.read_text()))
    config = load_config(data)
    engine = make_engine(config.database_url)
    store = MailStore(engine, config.mail_dir, config.hostname)
    try:
        directory = Directory(engine)
        accounts = AccountService(directory, StoreMailboxes(store), config.mail_dir)
        for address in users:
            userid, domain = address.split("@")
            if directory.get_domain(domain) is None:
                directory.add_domain(domain)
                DkimKeys(engine).ensure(domain, config.dkim_selector)
            accounts.create(domain, userid.title(), userid, PASSWORD)
    finally:
        store.close()
        engine.dispose()
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
