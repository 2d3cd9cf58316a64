"""When to try again: exponential back-off bounded by the queue settings."""

from __future__ import annotations

from nmail.config import QueueSettings


def retry_delay(attempts: int, settings: QueueSettings) -> int:
    """Seconds to wait after the `attempts`-th failed attempt (1-based).

    first_retry, then doubling, capped at max_retry: with the defaults
    5 min, 10, 20, 40, 80, 160 min, then every 4 h.
    """
    first = max(1, settings.first_retry)
    cap = max(first, settings.max_retry)
    exponent = max(0, attempts - 1)
    if exponent >= 32:  # 2**32 * anything is past any cap
        return cap
    return int(min(cap, first * (2**exponent)))


def next_attempt_at(now: float, created_at: int, attempts: int, settings: QueueSettings) -> int:
    """The next attempt time, never later than the moment the message expires."""
    expires = created_at + settings.give_up_after
    return int(min(now + retry_delay(attempts, settings), max(expires, now + 1)))


def expired(now: float, created_at: int, settings: QueueSettings) -> bool:
    """True once the message has been in the queue for give_up_after seconds."""
    return now >= created_at + settings.give_up_after
