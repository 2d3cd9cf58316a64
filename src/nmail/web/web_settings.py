"""The `[web]` section of nmail.toml: host -> domain map, trusted proxies, sessions.

Read here, not in config.py, so the webmail's knobs stay next to the code
that uses them; config.py only lets the section through.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nmail.config_values import ConfigError, duration, section

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class WebSettings:
    # Exact host name (lower case, no port) -> hosted domain it logs users into.
    host_domains: dict[str, str] = field(default_factory=dict)
    # Reverse proxies whose X-Forwarded-For is believed (the admin declares them).
    trusted_proxies: tuple[Network, ...] = ()
    # A session unused this long is dead; none lives longer than session_max.
    session_idle: int = 2 * 3600
    session_max: int = 7 * 86400
    # "auto": Secure cookies when the request came over TLS (or a trusted proxy said so).
    secure_cookies: str = "auto"
    # Dates are shown in this zone (IANA name) to users who chose none and whose
    # browser sent none at login (web/time_zone.py).
    time_zone: str = "Asia/Seoul"


def web_settings(raw: dict[str, Any]) -> WebSettings:
    """WebSettings from the whole parsed nmail.toml; ConfigError names the bad key."""
    web = section(raw, "web")
    hosts_raw = web.get("hosts", {})
    if not isinstance(hosts_raw, dict):
        raise ConfigError("[web] hosts must be a table of \"host\" = \"domain\"")
    hosts = {str(k).strip().lower(): str(v).strip().lower() for k, v in hosts_raw.items()}
    proxies: list[Network] = []
    for text in web.get("trusted_proxies", []):
        try:
            proxies.append(ipaddress.ip_network(str(text), strict=False))
        except ValueError:
            raise ConfigError(f"[web] trusted_proxies: bad network {text!r}") from None
    secure = str(web.get("secure_cookies", "auto")).lower()
    if secure not in ("auto", "always", "never"):
        raise ConfigError("[web] secure_cookies: expected auto, always or never")
    idle = duration(web.get("session_idle", "2h"), "[web] session_idle")
    longest = duration(web.get("session_max", "7d"), "[web] session_max")
    if idle < 60 or longest < idle:
        raise ConfigError("[web] session_idle must be at least 60s and at most session_max")
    zone = str(web.get("time_zone", "Asia/Seoul"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[web] time_zone: unknown time zone {zone!r}") from None
    return WebSettings(hosts, tuple(proxies), idle, longest, secure, zone)
