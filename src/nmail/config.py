"""nmail.toml: loading, defaults and the file `nmail init` writes.

The file is the admin's; we only ever write it at `init`. Everything that
changes at run time (domains, users, relay networks) lives in the database.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nmail.config_http import HttpSettings, http_settings
from nmail.config_listen import listen_section
from nmail.config_login import LoginSettings, login_settings
from nmail.config_sessions import SessionTiming, session_timing
from nmail.config_values import ConfigError as ConfigError  # callers import it from here
from nmail.config_values import duration_key, file_path, section, whole_key

CONFIG_NAME = "nmail.toml"


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    max_message_size: int = 50 * 1024 * 1024
    max_recipients: int = 100
    max_hops: int = 30
    max_bad_commands: int = 20
    # Refused RCPTs (5xx) without a delivery: past the soft limit each RCPT
    # reply waits rcpt_error_delay seconds; at the hard limit 421 and close.
    rcpt_error_soft_limit: int = 10
    rcpt_error_hard_limit: int = 20
    rcpt_error_delay: float = 1.0
    # Open connections a listener serves (all its workers together), and from one client
    # address (an IPv6 /64; loopback is not limited). Postfix's default is 50.
    max_connections: int = 1000
    max_connections_per_ip: int = 50
    # Networks allowed to AUTH without TLS and to relay without AUTH are in
    # the database (nmail relay ...); this one is for plaintext AUTH only.
    plaintext_auth_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    banner: str = "ESMTP nmail"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True, slots=True)
class QueueSettings:
    first_retry: int = 300
    max_retry: int = 4 * 3600
    give_up_after: int = 5 * 24 * 3600
    delay_warning_after: int = 4 * 3600
    max_connections: int = 50
    max_connections_per_domain: int = 5
    lease_seconds: int = 300
    # Port of the remote MX servers (25; tests point it at a loopback sink).
    remote_port: int = 25
    # Destination domains (or relay/transport host names, or "*") whose
    # servers' TLS certificates must verify; elsewhere STARTTLS is opportunistic.
    tls_verify: tuple[str, ...] = ()
    # How long `queue show` still knows a delivered or failed message.
    keep_finished: int = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Pop3Config:
    # A login without "@domain" means this domain (listeners for one domain).
    default_domain: str | None = None
    # Open sessions per listener, and from one client address
    # (an IPv6 /64; loopback is not limited).
    max_connections: int = 1000
    max_connections_per_ip: int = 20


@dataclass(frozen=True, slots=True)
class RelayHost:
    host: str
    port: int = 587
    user: str | None = None
    password: str | None = None
    tls: str = "starttls"  # starttls | implicit | none
    # With a password configured, the smarthost's certificate must verify
    # (name and chain) before AUTH; False is the admin's explicit opt-out.
    verify_certificate: bool = True


@dataclass(frozen=True, slots=True)
class Config:
    """Everything `nmail serve` and the CLI read from nmail.toml."""

    data_dir: Path
    hostname: str
    database_url: str
    listeners: dict[str, str] = field(default_factory=dict)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    dkim_selector: str = "nmail"
    pop3: Pop3Config = field(default_factory=Pop3Config)
    http: HttpSettings = field(default_factory=HttpSettings)
    smtp_timing: SessionTiming = field(default_factory=SessionTiming)
    login: LoginSettings = field(default_factory=LoginSettings)
    # At stop, sessions in a transaction get this long, then 421 and close.
    stop_timeout: int = 30
    nameservers: tuple[str, ...] = ()
    relay: RelayHost | None = None
    transport: dict[str, str] = field(default_factory=dict)
    # The domain of the SRS addresses forwarded mail is sent from (default:
    # the hostname); mail to it must reach this server.
    srs_domain: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def queue_dir(self) -> Path:
        return self.data_dir / "queue"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def domain(self) -> str:
        """The hostname's domain: mail.example.com -> example.com."""
        return hostname_domain(self.hostname)


def hostname_domain(hostname: str) -> str:
    parts = hostname.split(".")
    return ".".join(parts[1:]) if len(parts) > 2 else hostname


def resolve_data_dir(arg: str | None) -> Path:
    """--data, else $NMAIL_DATA, else ./data."""
    value = arg or os.environ.get("NMAIL_DATA") or "data"
    return Path(value).expanduser().resolve()


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'index.sqlite3'}"


def load_config(data_dir: Path) -> Config:
    """Read DIR/nmail.toml; raise ConfigError with the key that is wrong."""
    path = data_dir / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run `nmail init` first)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config_from_dict(data_dir, raw)


_SMTP = SmtpSettings()
_QUEUE = QueueSettings()
_POP3 = Pop3Config()


KNOWN_SECTIONS = frozenset(
    {
        "server",
        "database",
        "listen",
        "smtp",
        "tls",
        "queue",
        "dkim",
        "dns",
        "relay",
        "srs",
        "transport",
        "pop3",
        "http",
        "login",
        "web",  # read by nmail.web.web_settings
    }
)


def _srs_domain(value: Any, hostname: str) -> str:
    """[srs] domain: a plain ASCII domain name (default: the hostname)."""
    if value is None:
        return hostname.lower().rstrip(".")
    text = str(value).lower().rstrip(".")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", text):
        raise ConfigError(f"[srs] domain: {value!r} is not a domain name (ASCII, with a dot)")
    return text


def _seconds(value: Any, key: str) -> float:
    """A short delay in seconds (0 to 60, fractions allowed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 60:
        raise ConfigError(f"{key}: expected seconds from 0 to 60, got {value!r}")
    return float(value)


def config_from_dict(data_dir: Path, raw: dict[str, Any]) -> Config:
    # A misspelt section would otherwise be ignored without a word.
    unknown = sorted(set(raw) - KNOWN_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section or key {unknown[0]!r} in nmail.toml")
    server = section(raw, "server")
    hostname = str(server.get("hostname") or "localhost")
    db = section(raw, "database")
    url = str(db.get("url") or default_database_url(data_dir))
    listeners = listen_section(raw)
    smtp_raw = section(raw, "smtp")
    smtp = SmtpSettings(
        max_message_size=whole_key(smtp_raw, "smtp", "max_message_size", _SMTP.max_message_size),
        max_recipients=whole_key(smtp_raw, "smtp", "max_recipients", _SMTP.max_recipients),
        max_hops=whole_key(smtp_raw, "smtp", "max_hops", _SMTP.max_hops),
        max_bad_commands=whole_key(smtp_raw, "smtp", "max_bad_commands", _SMTP.max_bad_commands),
        max_connections=whole_key(smtp_raw, "smtp", "max_connections", _SMTP.max_connections),
        max_connections_per_ip=whole_key(
            smtp_raw, "smtp", "max_connections_per_ip", _SMTP.max_connections_per_ip
        ),
        plaintext_auth_networks=tuple(
            smtp_raw.get("plaintext_auth_networks", _SMTP.plaintext_auth_networks)
        ),
        banner=str(smtp_raw.get("banner", _SMTP.banner)),
        rcpt_error_soft_limit=whole_key(
            smtp_raw, "smtp", "rcpt_error_soft_limit", _SMTP.rcpt_error_soft_limit
        ),
        rcpt_error_hard_limit=whole_key(
            smtp_raw, "smtp", "rcpt_error_hard_limit", _SMTP.rcpt_error_hard_limit
        ),
        rcpt_error_delay=_seconds(
            smtp_raw.get("rcpt_error_delay", _SMTP.rcpt_error_delay), "[smtp] rcpt_error_delay"
        ),
    )
    if smtp.rcpt_error_soft_limit > smtp.rcpt_error_hard_limit:
        raise ConfigError("[smtp] rcpt_error_soft_limit must not exceed rcpt_error_hard_limit")
    for cidr in smtp.plaintext_auth_networks:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(f"[smtp] plaintext_auth_networks: bad network {cidr!r}") from None
    tls_raw = section(raw, "tls")
    tls = TlsSettings(
        cert=file_path(data_dir, tls_raw.get("cert")),
        key=file_path(data_dir, tls_raw.get("key")),
    )
    q = section(raw, "queue")
    queue = QueueSettings(
        first_retry=duration_key(q, "queue", "first_retry", _QUEUE.first_retry),
        max_retry=duration_key(q, "queue", "max_retry", _QUEUE.max_retry),
        give_up_after=duration_key(q, "queue", "give_up_after", _QUEUE.give_up_after),
        delay_warning_after=duration_key(
            q, "queue", "delay_warning_after", _QUEUE.delay_warning_after
        ),
        max_connections=whole_key(q, "queue", "max_connections", _QUEUE.max_connections),
        max_connections_per_domain=whole_key(
            q, "queue", "max_connections_per_domain", _QUEUE.max_connections_per_domain
        ),
        lease_seconds=duration_key(q, "queue", "lease_seconds", _QUEUE.lease_seconds),
        remote_port=whole_key(q, "queue", "remote_port", _QUEUE.remote_port, high=65535),
        tls_verify=tuple(str(name).lower() for name in q.get("tls_verify", ())),
        keep_finished=duration_key(q, "queue", "keep_finished", _QUEUE.keep_finished),
    )
    dkim = section(raw, "dkim")
    dns_raw = section(raw, "dns")
    relay_raw = section(raw, "relay")
    relay = None
    if relay_raw.get("host"):
        relay = RelayHost(
            host=str(relay_raw["host"]),
            port=whole_key(relay_raw, "relay", "port", 587, high=65535),
            user=relay_raw.get("user"),
            password=relay_raw.get("password"),
            tls=str(relay_raw.get("tls", "starttls")),
            verify_certificate=relay_raw.get("verify_certificate", True),
        )
        if relay.tls not in ("starttls", "implicit", "none"):
            raise ConfigError("[relay] tls: expected starttls, implicit or none")
        if not isinstance(relay.verify_certificate, bool):
            raise ConfigError("[relay] verify_certificate: expected true or false")
        if relay.password is not None and relay.tls == "none" and relay.verify_certificate:
            raise ConfigError(
                "[relay] a password with tls = \"none\" would be sent in clear: use "
                "starttls or implicit, or set verify_certificate = false to accept that"
            )
    transport = {str(k).lower(): str(v) for k, v in section(raw, "transport").items()}
    pop3_raw = section(raw, "pop3")
    pop3_default = pop3_raw.get("default_domain")
    pop3 = Pop3Config(
        default_domain=str(pop3_default).lower() if pop3_default else None,
        max_connections=whole_key(pop3_raw, "pop3", "max_connections", _POP3.max_connections),
        max_connections_per_ip=whole_key(
            pop3_raw, "pop3", "max_connections_per_ip", _POP3.max_connections_per_ip
        ),
    )
    return Config(
        data_dir=data_dir,
        hostname=hostname,
        database_url=url,
        listeners=listeners,
        smtp=smtp,
        tls=tls,
        queue=queue,
        dkim_selector=str(dkim.get("selector", "nmail")),
        pop3=pop3,
        http=http_settings(raw),
        smtp_timing=session_timing(raw),
        login=login_settings(raw),
        stop_timeout=duration_key(server, "server", "stop_timeout", 30),
        nameservers=tuple(str(n) for n in dns_raw.get("nameservers", [])),
        relay=relay,
        transport=transport,
        srs_domain=_srs_domain(section(raw, "srs").get("domain"), hostname),
        raw=raw,
    )
