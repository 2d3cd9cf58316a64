"""What the directory raises when it refuses a request: one line that says why."""

from __future__ import annotations


class DirectoryError(ValueError):
    """A refused directory request; str(exc) is one line fit for a user."""


class InvalidName(DirectoryError):
    """A domain, local part, address or network is not well formed."""


class WeakPassword(DirectoryError):
    """A password the policy refuses."""


class NotFound(DirectoryError):
    """The domain, account, alias or entry named does not exist."""


class Conflict(DirectoryError):
    """The change would duplicate or shadow something that exists."""
