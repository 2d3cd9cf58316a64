"""What can go wrong when routing mail through DNS."""

from __future__ import annotations


class DnsLookupError(Exception):
    """A lookup that did not produce a usable answer.

    `permanent` tells the queue whether to bounce (True) or retry (False);
    `status` is the RFC 3463 enhanced status code for the DSN.
    """

    def __init__(self, message: str, *, permanent: bool, status: str) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


def permanent(message: str, status: str = "5.1.2") -> DnsLookupError:
    """A failure that retrying will not fix (NXDOMAIN, null MX)."""
    return DnsLookupError(message, permanent=True, status=status)


def temporary(message: str, status: str = "4.4.3") -> DnsLookupError:
    """A failure that may go away (SERVFAIL, timeout)."""
    return DnsLookupError(message, permanent=False, status=status)
