"""What a POP3 listener is told (nmail.toml's [pop3], and the listener's kind)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pop3Settings:
    implicit_tls: bool = False  # pop3s: TLS from the first byte
    default_domain: str | None = None  # a bare user id logs in as user@default_domain
    plaintext_auth_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    idle_timeout: float = 600.0  # RFC 1939: at least 10 minutes
    # A session ends after this however busy (no UPDATE): a NOOP now and then
    # cannot hold the maildrop lock for ever, and a login lives no longer than
    # this after a password change (item 7; a disabled, deleted or replaced
    # account ends its sessions at their next command).
    max_session_time: float = 3600.0
    handshake_timeout: float = 30.0
    max_errors: int = 10
    max_connections: int = 1000  # open sessions on this listener
    max_connections_per_ip: int = 20  # from one address (IPv6 /64); loopback unlimited
