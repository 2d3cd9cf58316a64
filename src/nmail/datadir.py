"""Creating a data directory: what `nmail init` (and a first `nmail serve`) does."""

from __future__ import annotations

import secrets
import socket
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from nmail.certs import generate_self_signed
from nmail.config import (
    CONFIG_NAME,
    Config,
    ConfigError,
    config_from_dict,
    hostname_domain,
)
from nmail.config_template import render_default_config
from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.directory.service import Directory
from nmail.permissions import tighten
from nmail.queue.dkim import DkimKeys

SUBDIRS = ("mail", "queue", "logs", "tls")


@dataclass(frozen=True, slots=True)
class InitResult:
    data_dir: Path
    hostname: str
    postmaster: str
    password: str
    password_generated: bool


def default_hostname() -> str:
    """This machine's FQDN; a bare name gets `.localdomain` so it has a domain."""
    name = socket.getfqdn().strip(".").lower() or "localhost"
    if "." not in name:
        name += ".localdomain"
    return name


def generate_password(length: int = 16) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


def is_initialized(data_dir: Path) -> bool:
    return (data_dir / CONFIG_NAME).exists()


def initialize(
    data_dir: Path,
    *,
    hostname: str | None = None,
    password: str | None = None,
    database_url: str | None = None,
) -> InitResult:
    """Create DIR with nmail.toml, the migrated index, mail/ queue/ logs/ tls/,
    a self-signed certificate and the postmaster account. Refuses to touch an
    existing configuration."""
    from nmail.directory.names import normalize_domain

    if is_initialized(data_dir):
        raise ConfigError(f"{data_dir / CONFIG_NAME} already exists; nothing changed")
    host = (hostname or default_hostname()).strip().rstrip(".").lower()
    try:
        host = normalize_domain(host)
    except ValueError as exc:
        raise ConfigError(f"--hostname {hostname!r}: {exc}") from None
    domain = hostname_domain(host)
    generated = password is None
    pw = password if password is not None else generate_password()

    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Private whatever the caller's umask (and if DIR existed already).
    data_dir.chmod(data_dir.stat().st_mode & 0o700)
    for sub in SUBDIRS:
        (data_dir / sub).mkdir(mode=0o700, exist_ok=True)
    text = render_default_config(host, database_url)
    # Write the config last-but-one and atomically: a half-made directory
    # (failure below) is detected by the missing file and can be re-run.
    tmp = data_dir / (CONFIG_NAME + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    config_probe = data_dir / ".init-probe"
    try:
        tmp.replace(config_probe)
        config = load_config_from(config_probe, data_dir)
        generate_self_signed(host, data_dir / "tls" / "cert.pem", data_dir / "tls" / "key.pem")
        engine = make_engine(config.database_url)
        try:
            upgrade(engine)
            directory = Directory(engine)
            if not directory.get_domain(domain):
                directory.add_domain(domain)
            DkimKeys(engine).ensure(domain, config.dkim_selector)
            _add_postmaster(engine, directory, config.mail_dir, host, domain, pw)
        finally:
            engine.dispose()
        config_probe.replace(data_dir / CONFIG_NAME)
        # Private whatever umask the caller had (nmail init sets 077 itself).
        tighten(data_dir, config)
    except BaseException:
        config_probe.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        raise
    return InitResult(data_dir, host, f"postmaster@{domain}", pw, generated)


def load_config_from(path: Path, data_dir: Path) -> Config:
    """Load a config file that is not (yet) at its final name."""
    return config_from_dict(data_dir, tomllib.loads(path.read_text(encoding="utf-8")))


def _add_postmaster(
    engine: Engine, directory: Directory, mail_dir: Path, hostname: str, domain: str, pw: str
) -> None:
    from nmail.accounts import AccountService, StoreMailboxes
    from nmail.mailstore.store import MailStore

    store = MailStore(engine, mail_dir, hostname)
    try:
        AccountService(directory, StoreMailboxes(store), mail_dir).create(
            domain, "Postmaster", "postmaster", pw, admin=True, server_admin=True
        )
    finally:
        store.close()
