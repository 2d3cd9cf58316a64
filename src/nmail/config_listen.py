"""Listeners: the `[listen]` section of nmail.toml, `--listen`, default ports.

Apart from config.py (which reads every other section) because choosing
where to listen is a small grammar of its own: NAME=HOST:PORT with a
bracketed IPv6 host, "off", ports that depend on whether we run as root,
and the merge of the file with the command line that `nmail serve` does at
start. config.py only asks it to check the `[listen]` table it loads.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nmail.config_values import ConfigError, section

if TYPE_CHECKING:
    from nmail.config import Config

LISTENER_NAMES = (
    "smtp",
    "submission",
    "submissions",
    "pop3",
    "pop3s",
    "imap",
    "imaps",
    "http",
)
STANDARD_PORTS = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "pop3": 110,
    "pop3s": 995,
    "imap": 143,
    "imaps": 993,
    "http": 80,
}
UNPRIVILEGED_PORTS = {
    "smtp": 2525,
    "submission": 2587,
    "submissions": 2465,
    "pop3": 2110,
    "pop3s": 2995,
    "imap": 2143,
    "imaps": 2993,
    "http": 8080,
}
# Listeners whose protocol is implemented; the others are accepted in the
# file (so a config written for a later version still loads) but skipped.
IMPLEMENTED_LISTENERS = ("smtp", "submission", "submissions", "pop3", "pop3s", "http")

# `--listen NAME=off` (and "off" in [listen]): that listener is not started.
OFF = -1
_OFF = ("", "off", "no", "false")


@dataclass(frozen=True, slots=True)
class Listen:
    """One listener: which protocol, where."""

    name: str
    host: str
    port: int


def listen_section(raw: dict[str, Any]) -> dict[str, str]:
    """`[listen]` as NAME -> spec; ConfigError names an unknown listener or bad address."""
    listeners: dict[str, str] = {}
    for name, spec in section(raw, "listen").items():
        if name not in LISTENER_NAMES:
            raise ConfigError(f"[listen] {name}: unknown listener")
        listeners[name] = str(spec)
        if spec not in _OFF:
            parse_hostport(str(spec), 0)
    return listeners


def parse_listen(spec: str) -> Listen:
    """Parse NAME=HOST:PORT (HOST may be [v6]), or NAME=off."""
    name, sep, addr = spec.partition("=")
    name = name.strip().lower()
    if not sep or name not in LISTENER_NAMES:
        raise ConfigError(
            f"--listen {spec!r}: expected NAME=HOST:PORT with NAME one of "
            + ", ".join(LISTENER_NAMES)
        )
    if addr.strip().lower() == "off":
        return Listen(name, "", OFF)
    host, port = parse_hostport(addr, None)
    if port is None:
        raise ConfigError(f"--listen {spec!r}: missing port")
    return Listen(name, host, port)


def parse_hostport(addr: str, default_port: int | None) -> tuple[str, int | None]:
    """'0.0.0.0:25', '[::1]:25', '127.0.0.1', ':25' -> (host, port)."""
    addr = addr.strip()
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise ConfigError(f"bad address {addr!r}")
        host, rest = addr[1:end], addr[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ConfigError(f"bad address {addr!r}")
    elif addr.count(":") == 1:
        host, port_text = addr.split(":")
    else:
        host, port_text = addr, ""
    host = host or "0.0.0.0"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(f"bad listen host {host!r}: use an IP address") from None
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"bad port in {addr!r}")
    return host, int(port_text)


def default_port(name: str) -> int:
    table = STANDARD_PORTS if os.geteuid() == 0 else UNPRIVILEGED_PORTS
    return table[name]


def listeners_from(config: Config, overrides: list[Listen]) -> list[Listen]:
    """The listeners to start: the file's enabled ones, then --listen overrides."""
    chosen: dict[str, Listen] = {}
    for name, spec in config.listeners.items():
        if spec.strip().lower() in _OFF:
            continue
        host, port = parse_hostport(spec, default_port(name))
        assert port is not None
        chosen[name] = Listen(name, host, port)
    for item in overrides:
        if item.port == OFF:
            chosen.pop(item.name, None)
        else:
            chosen[item.name] = item
    return [chosen[n] for n in LISTENER_NAMES if n in chosen]
