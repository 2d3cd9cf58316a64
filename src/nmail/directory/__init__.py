"""The directory: domains, accounts, aliases, relay networks, passwords, logins."""

from nmail.directory.errors import Conflict, DirectoryError, InvalidName, NotFound, WeakPassword
from nmail.directory.model import (
    Account,
    Alias,
    AuthResult,
    AuthStatus,
    Domain,
    DomainAlias,
    Resolution,
)
from nmail.directory.server_admins import LastServerAdmin
from nmail.directory.service import Directory
from nmail.directory.throttle import LoginThrottle, ThrottleVerdict

__all__ = [
    "Account",
    "Alias",
    "AuthResult",
    "AuthStatus",
    "Conflict",
    "Directory",
    "DirectoryError",
    "Domain",
    "DomainAlias",
    "InvalidName",
    "LastServerAdmin",
    "LoginThrottle",
    "NotFound",
    "Resolution",
    "ThrottleVerdict",
    "WeakPassword",
]
