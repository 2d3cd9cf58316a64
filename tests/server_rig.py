"""A whole nmail (Runtime: every listener, queue, web) on free loopback ports."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from pathlib import Path
from types import TracebackType

from datadir_copy import initialized
from nmail.config import Config, load_config
from nmail.config_listen import Listen
from nmail.directory import Directory
from nmail.directory.model import Account
from nmail.directory.passwords import fast_hashing
from nmail.directory.throttle import LoginThrottle
from nmail.runtime import Runtime
from nmail.servers.delays import Sleep
from nmail.startup import Bound
from support import LoopThread

HOSTNAME = "mail.example.com"
POSTMASTER_PASSWORD = "Postmaster-pw-1"
PASSWORD = "Correct-horse-9"
LISTENERS = ("smtp", "submission", "submissions", "pop3", "pop3s", "http")


def make_data_dir(tmp_path: Path, database_url: str | None = None) -> Path:
    data = tmp_path / "data"
    initialized(data, hostname=HOSTNAME, password=POSTMASTER_PASSWORD, database_url=database_url)
    return data


class RunningServer:
    """`nmail serve` in this process, on an event loop thread; a context manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        loop: str = "uvloop",
        listeners: tuple[str, ...] = LISTENERS,
        config: Config | None = None,
        throttle: LoginThrottle | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.data_dir = data_dir
        self.config = config or load_config(data_dir)
        # No waiting after a failed login unless a test asks for a throttle.
        self.runtime = Runtime(
            self.config,
            passwords=fast_hashing(),
            throttle=throttle
            if throttle is not None
            else LoginThrottle(first_delay=0, max_delay=0, max_failures=1000),
            sleep=sleep,
        )
        self.loop = LoopThread(loop)
        self.bound: dict[str, Bound] = {}
        wanted = [Listen(name, "127.0.0.1", 0) for name in listeners]
        for b in self.loop.run(self.runtime.start(wanted)):
            self.bound[b.name] = b

    @property
    def directory(self) -> Directory:
        return self.runtime.directory

    def port(self, name: str) -> int:
        return self.bound[name].port

    def add_user(self, address: str, password: str = PASSWORD, **kwargs: object) -> Account:
        userid, domain = address.split("@")
        if self.directory.get_domain(domain) is None:
            self.directory.add_domain(domain)
        account = self.directory.add_account(domain, userid.title(), userid, password, **kwargs)  # type: ignore[arg-type]
        self.runtime.store.ensure_account(account)
        return account

    def smtp(self, name: str = "smtp") -> smtplib.SMTP:
        if name == "submissions":
            return smtplib.SMTP_SSL(
                "127.0.0.1", self.port(name), context=insecure_context(), timeout=10
            )
        return smtplib.SMTP("127.0.0.1", self.port(name), timeout=10)

    def maildir(self, address: str, folder: str = "INBOX") -> Path:
        userid, domain = address.split("@")
        base = self.data_dir / "mail" / domain / userid / "Maildir"
        return base if folder == "INBOX" else base / f".{folder}"

    def stop(self) -> None:
        try:
            self.loop.run(self.runtime.stop(), timeout=60)
        finally:
            self.loop.close()
            self.runtime.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def insecure_context() -> ssl.SSLContext:
    """Clients in tests talk to a self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
