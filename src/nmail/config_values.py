"""Reading single values of nmail.toml: each refusal names the key that is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration file or a command-line override is wrong."""


def duration(value: Any, key: str) -> int:
    """Seconds from 300, "300", "5m", "4h", "5d"."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration like 300, 5m, 4h or 5d")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{key}: a duration cannot be negative")
        return value
    text = str(value).strip().lower()
    if text.startswith("-"):
        raise ConfigError(f"{key}: a duration cannot be negative")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise ConfigError(f"{key}: expected a duration like 300, 5m, 4h or 5d") from None


def number(value: Any, key: str, low: int = 0, high: int = 2**62) -> int:
    """A whole number in [low, high], or ConfigError naming the key."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{key}: expected a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{key}: expected {low} to {high}, got {number}")
    return number


def whole_key(table: dict[str, Any], name: str, key: str, default: int, *, low: int = 1,
              high: int = 2**62) -> int:
    """`[name] key` of its section's table: a whole number in [low, high], else `default`."""
    return number(table.get(key, default), f"[{name}] {key}", low, high)


def duration_key(table: dict[str, Any], name: str, key: str, default: int) -> int:
    """`[name] key` of its section's table: a duration (see `duration`), else `default`."""
    return duration(table.get(key, default), f"[{name}] {key}")


def section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def file_path(data_dir: Path, value: Any) -> Path | None:
    if not value:
        return None
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else data_dir / p
