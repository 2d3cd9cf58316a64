"""How long an SMTP session may live and how slowly it may talk (`[smtp]` keys).

Apart from config.py so these knobs sit together. A session used to live
as long as its client sent a byte now and then: the idle timer restarted
at every byte, so a session whose account had been deleted could trickle
on for ever (issue 9, item 7). Now:

- `idle_timeout`: the time allowed between our reply and the next complete
  command; bytes that arrive extend it only by what `min_data_rate` pays
  for them (Postfix's smtpd_min_data_rate), so a trickle cannot hold it.
- `min_data_rate`: bytes a second a client must keep up, once slower than
  the idle timeout alone allows (a message body counts the same way).
- `max_session_time`: a session is closed with 421 after this long,
  whatever it is doing (a client that has more to send reconnects).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nmail.config_values import ConfigError, duration_key, section, whole_key


@dataclass(frozen=True, slots=True)
class SessionTiming:
    idle_timeout: int = 300
    min_data_rate: int = 500
    max_session_time: int = 3600


_DEFAULT = SessionTiming()


def session_timing(raw: dict[str, Any]) -> SessionTiming:
    """Read the timing keys of `[smtp]`; ConfigError names a wrong one."""
    smtp = section(raw, "smtp")
    timing = SessionTiming(
        idle_timeout=duration_key(smtp, "smtp", "idle_timeout", _DEFAULT.idle_timeout),
        min_data_rate=whole_key(smtp, "smtp", "min_data_rate", _DEFAULT.min_data_rate),
        max_session_time=duration_key(smtp, "smtp", "max_session_time",
                                      _DEFAULT.max_session_time),
    )
    for key in ("idle_timeout", "max_session_time"):
        if getattr(timing, key) < 1:
            raise ConfigError(f"[smtp] {key}: expected at least 1 second")
    return timing
