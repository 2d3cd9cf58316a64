"""Mailbox sizes as admins write them: 0, 1048576, 512K, 100M, 2G, 1.5G."""

from __future__ import annotations

import re

from nmail.directory.errors import InvalidName

# Binary units, as Dovecot and every mail quota people know use them.
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
MAX_SIZE = 1 << 60


def parse_size(text: str) -> int:
    """Bytes from '0', '1048576', '512K', '100M', '2G', '1.5G' (0 = unlimited)."""
    spec = text.strip()
    if spec.lower() in ("unlimited", "none"):
        return 0
    match = _SIZE.fullmatch(spec)
    if match is None:
        raise InvalidName(
            f"size {text!r} is not valid (use bytes or a number with K, M, G or T; 0 = unlimited)"
        )
    number, unit = match.groups()
    factor = _UNITS[unit.lower()]
    value = int(float(number) * factor) if "." in number else int(number) * factor
    if value > MAX_SIZE:
        raise InvalidName(f"size {text!r} is too large")
    return value


def format_size(size: int) -> str:
    """A size for tables: 'unlimited', '100M', '2G', '1.5G', '1234'."""
    if size == 0:
        return "unlimited"
    for unit, factor in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= factor:
            value = size / factor
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text}{unit}"
    return str(size)
