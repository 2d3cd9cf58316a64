"""SASL PLAIN (RFC 4616) as POP3 AUTH carries it (RFC 5034)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


class SaslError(ValueError):
    """The client's SASL response cannot be used; the text is the -ERR reason."""


@dataclass(frozen=True, slots=True)
class PlainCredentials:
    username: str
    password: str


def decode_plain(response: str) -> PlainCredentials:
    """Decode base64 `[authzid] NUL authcid NUL passwd`; authzid must be empty or authcid."""
    if response == "=":  # RFC 5034: an empty initial response
        raw = b""
    else:
        try:
            raw = base64.b64decode(response.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise SaslError("Invalid base64 data in AUTH response") from None
    parts = raw.split(b"\x00")
    if len(parts) != 3:
        raise SaslError("Malformed AUTH PLAIN response")
    try:
        authzid, authcid, passwd = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        raise SaslError("AUTH PLAIN response is not UTF-8") from None
    if not authcid or not passwd:
        raise SaslError("Malformed AUTH PLAIN response")
    if authzid and authzid != authcid:
        # Acting as another user (proxy authorization) is not offered.
        raise SaslError("[AUTH] Authorization identity must be empty or the login")
    return PlainCredentials(authcid, passwd)
