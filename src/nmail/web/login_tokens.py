"""The login form's CSRF token, without a session row: signed, bound to a cookie.

Until now GET /login made a pre-login session row to carry the form's token,
so every cookieless GET wrote to the database: a loop of GETs (a crawler, a
monitor, an attacker) filled `web_sessions` as fast as it could ask. Now the
form gets a random cookie (`nmail_login`, nothing stored) and a token that is
an HMAC of that cookie and the time it was issued, under a key kept in the
data directory (`web-login.secret`, made at first use like the SRS key; every
web process and node sharing the directory accepts the others' forms). The
Guard accepts a POST /login without a session only with a token made for the
cookie it came with, at most MAX_AGE old; a token from another cookie, an
old one or a forged one is 403 like any missing CSRF token.

A session row is made only by a good login (routes/login.py), always a new
one, so a session id from before login still means nothing after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

COOKIE = "nmail_login"
SECRET_FILE = "web-login.secret"
MAX_AGE = 3600  # an open login form works this long (a pre-login session lived as long)
_LABEL = b"nmail login form\x00"


def _mac(secret: bytes, cookie: str, issued: int) -> str:
    digest = hmac.new(secret, _LABEL + f"{cookie}\x00{issued}".encode("ascii"),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def well_formed(cookie: str) -> bool:
    """A cookie value this module could have made (43 url-safe characters)."""
    return len(cookie) == 43 and all(c.isalnum() or c in "-_" for c in cookie)


class LoginTokens:
    def __init__(self, secret: bytes, clock: Callable[[], float]) -> None:
        self._secret = secret
        self._clock = clock

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(32)

    def token_for(self, cookie: str) -> str:
        """The form's token for this cookie, issued now."""
        issued = int(self._clock())
        return f"{issued}.{_mac(self._secret, cookie, issued)}"

    def valid(self, cookie: str, token: str) -> bool:
        """Whether `token` was made for `cookie` by us and is at most MAX_AGE old."""
        if not well_formed(cookie) or len(token) > 80:
            return False
        issued_text, _, mac = token.partition(".")
        if not issued_text.isdigit() or len(issued_text) > 12:
            return False
        issued = int(issued_text)
        age = int(self._clock()) - issued
        if age < -60 or age > MAX_AGE:  # a minute of clock skew between nodes
            return False
        return hmac.compare_digest(mac, _mac(self._secret, cookie, issued))
