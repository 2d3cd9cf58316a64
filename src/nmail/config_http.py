"""The `[http]` section of nmail.toml: how the web process limits its clients.

Apart from config.py (which reads every other section) so the web
listener's knobs and their defaults sit in one place. The limits follow the
SMTP and POP3 listeners': connections in all and per client address (an
IPv6 /64; loopback is not limited, since a reverse proxy on this host
carries every user), plus a deadline for a request's headers, which an idle
or trickling client must meet or be closed (Apache's RequestReadTimeout,
nginx's client_header_timeout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nmail.config_values import ConfigError, duration, section, whole_key


@dataclass(frozen=True, slots=True)
class HttpSettings:
    # Open connections the web process serves, and from one client address.
    # A browser opens about six per host; a household or office shares one address.
    max_connections: int = 1000
    max_connections_per_ip: int = 100
    # Seconds a client has to send a whole request head, counted from the
    # connection (or from the end of the previous response); bytes trickling
    # in do not extend it.
    header_timeout: int = 20
    # Seconds an idle keep-alive connection is kept after a response.
    keepalive_timeout: int = 5


_DEFAULT = HttpSettings()


def http_settings(raw: dict[str, Any]) -> HttpSettings:
    """Read `[http]`; ConfigError names a wrong or unknown key."""
    given = section(raw, "http")
    known = {"max_connections", "max_connections_per_ip", "header_timeout", "keepalive_timeout"}
    for key in given:
        if key not in known:
            raise ConfigError(f"[http] {key}: unknown key")
    return HttpSettings(
        max_connections=whole_key(given, "http", "max_connections", _DEFAULT.max_connections),
        max_connections_per_ip=whole_key(
            given, "http", "max_connections_per_ip", _DEFAULT.max_connections_per_ip
        ),
        header_timeout=_positive(
            given.get("header_timeout", _DEFAULT.header_timeout), "[http] header_timeout"
        ),
        keepalive_timeout=_positive(
            given.get("keepalive_timeout", _DEFAULT.keepalive_timeout), "[http] keepalive_timeout"
        ),
    )


def _positive(value: Any, key: str) -> int:
    seconds = duration(value, key)
    if seconds < 1:
        raise ConfigError(f"{key}: expected at least 1 second")
    return seconds
