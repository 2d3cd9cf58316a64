"""The time zone a request's dates are shown in: the user's, the browser's, the server's.

Like the language (web/i18n.py), it is chosen once per request by the Guard
and kept in a context variable, so templates, the list's row builder and
the reply's "On ..., X wrote:" agree without passing it around. The order:
the user's setting (web_prefs.time_zone), then the zone the browser sent
with the login form (kept in the session, as Roundcube's _timezone), then
`[web] time_zone`. Names are IANA names that zoneinfo knows; anything else
is ignored where it came from a browser and refused where a user typed it.
"""

from __future__ import annotations

import contextvars
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

SERVER_DEFAULT = "Asia/Seoul"
MAX_NAME = 64

_current: contextvars.ContextVar[ZoneInfo | None] = contextvars.ContextVar(
    "nmail_zone", default=None)
_FALLBACK = ZoneInfo(SERVER_DEFAULT)


@functools.lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every zone the user may choose, sorted (the settings page's list)."""
    return tuple(sorted(n for n in available_timezones() if "/" in n or n == "UTC"))


@functools.lru_cache(maxsize=512)
def _load(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zone_or_none(name: str) -> ZoneInfo | None:
    """The zone of an IANA name, or None when it is not one (never raises)."""
    if not name or len(name) > MAX_NAME or name.startswith(("/", ".")) or ".." in name:
        return None
    return _load(name)


def set_zone(zone: ZoneInfo) -> contextvars.Token[ZoneInfo | None]:
    return _current.set(zone)


def reset_zone(token: contextvars.Token[ZoneInfo | None]) -> None:
    _current.reset(token)


def current_zone() -> ZoneInfo:
    """This request's zone (outside a request: [web] time_zone's default)."""
    return _current.get() or _FALLBACK
