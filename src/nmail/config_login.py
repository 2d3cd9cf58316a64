"""The `[login]` section of nmail.toml: the sizes of each process's password gate.

The gate (directory/login_gate.py) runs at most `concurrent_checks` Argon2
checks at once (64 MiB each with argon2-cffi's defaults), lets
`waiting_checks` more wait their turn for at most `wait_seconds`, and
answers the rest busy (SMTP 454 4.7.0, POP3 -ERR [SYS/TEMP], web 503).
The defaults fit most servers: one check per CPU the process may use (at
most 8), four times that waiting, 10 s. An admin whose users log in in
bursts (a school's lab at 9:00) may want a longer line; one on a small
VPS fewer checks at once, to bound memory.

Checked here rather than clamped at run time: a waiting check holds one
of the process's 32 pool threads, so checks and waiting together are kept
to at most 16 (directory/login_gate.MAX_PLACES), leaving the rest for mail;
a key left out takes its default within what the other leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nmail.config_values import ConfigError, duration, section, whole_key

# The gate's places: half the process's pool (runtime.py: 32 threads). Kept
# equal to directory/login_gate.MAX_PLACES (a test says so); config imports
# nothing from directory/.
MAX_PLACES = 16
MAX_WAIT_SECONDS = 60  # past a minute in line a client has given up


@dataclass(frozen=True, slots=True)
class LoginSettings:
    # None: the gate's default (one per usable CPU, at most 8; four times that waiting).
    concurrent_checks: int | None = None
    waiting_checks: int | None = None
    wait_seconds: int = 10


_DEFAULT = LoginSettings()
_KNOWN = frozenset({"concurrent_checks", "waiting_checks", "wait_seconds"})


def login_settings(raw: dict[str, Any]) -> LoginSettings:
    """Read `[login]`; ConfigError names a wrong or unknown key."""
    given = section(raw, "login")
    for key in given:
        if key not in _KNOWN:
            raise ConfigError(f"[login] {key}: unknown key (known: {', '.join(sorted(_KNOWN))})")
    checks = waiting = None
    if "concurrent_checks" in given:
        checks = whole_key(given, "login", "concurrent_checks", 0, low=1, high=MAX_PLACES)
    if "waiting_checks" in given:
        waiting = whole_key(given, "login", "waiting_checks", 0, low=0, high=MAX_PLACES - 1)
    if checks is not None and waiting is not None and checks + waiting > MAX_PLACES:
        raise ConfigError(
            f"[login] concurrent_checks + waiting_checks: at most {MAX_PLACES} together "
            f"(each holds one of the process's threads; the rest are for mail), "
            f"got {checks} + {waiting}")
    wait = duration(given.get("wait_seconds", _DEFAULT.wait_seconds), "[login] wait_seconds")
    if not 1 <= wait <= MAX_WAIT_SECONDS:
        raise ConfigError(f"[login] wait_seconds: expected 1 to {MAX_WAIT_SECONDS} seconds, "
                          f"got {wait}")
    return LoginSettings(concurrent_checks=checks, waiting_checks=waiting, wait_seconds=wait)
