"""SRS (Sender Rewriting Scheme): the envelope sender of mail we forward.

Mail that arrived from outside and leaves again (an alias, a catch-all or a
forwarding to another domain) keeps its author's From:, but it must not
keep the author's envelope sender: the next hop's SPF check would fail (we
are not the author's server), and rewriting to a plain address of ours
would take the bounces away from the author. SRS, as postsrsd does for
Postfix, encodes the original sender in an address of our SRS domain:

    SRS0=HHHH=TT=example.org=alice@srs-domain
    SRS1=HHHH=first-forwarder.example==HHHH=TT=example.org=alice@srs-domain

TT is the day (base32, modulo 1024), HHHH a keyed hash (HMAC-SHA256 with
the secret in the data directory, base32, compared without case, as some
MTAs lower-case local parts) over the day and the address, so only we can
make an address that `reverse` accepts, and only for `max_age_days`.
A sender that is already an SRS0 address of another forwarder becomes
SRS1 (the first forwarder stays the one a bounce goes back through).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from nmail.durable import fsync_dir

SECRET_FILE = "srs.secret"
HASH_LENGTH = 6  # base32 characters: 30 bits
MAX_AGE_DAYS = 21
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_DAY = 86400


class SrsError(ValueError):
    """An SRS address we did not make, made too long ago, or malformed."""


def load_secret(data_dir: Path, name: str = SECRET_FILE) -> bytes:
    """The SRS key from DIR/srs.secret (or another key file `name`), created (0600) at first
    use."""
    path = data_dir / name
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        _create_secret(path)
        text = path.read_text("ascii").strip()
    if len(text) < 32:
        raise ValueError(f"{path}: the secret is too short (32 characters at least)")
    return text.encode("ascii")


def _create_secret(path: Path) -> None:
    """Write a new key whole under a private name, then link it in (first one wins)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process was first: its key stands
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)


def is_srs(local_part: str) -> bool:
    return local_part[:5].upper() in ("SRS0=", "SRS1=")


@dataclass(frozen=True, slots=True)
class SrsRewriter:
    """Forward (rewrite a sender) and reverse (read a bounce's recipient) with one key."""

    secret: bytes
    domain: str  # the domain of the addresses we make; mail to it must reach us
    max_age_days: int = MAX_AGE_DAYS

    def forward(self, sender: str, now: float | None = None) -> str:
        """The SRS address standing for `sender` ("" and our own SRS stay as they are)."""
        if not sender or "@" not in sender:
            return sender
        local, _, domain = sender.rpartition("@")
        if domain.lower() == self.domain.lower() and is_srs(local):
            return sender
        kind = local[:5].upper()
        if kind == "SRS0=":
            rest = local[5:]
            return f"SRS1={self._hash(domain.lower(), rest)}={domain}=={rest}@{self.domain}"
        if kind == "SRS1=":
            _, sep, tail = local[5:].partition("=")
            first, sep2, rest = tail.partition("==")
            if sep and sep2 and first and rest:
                return f"SRS1={self._hash(first.lower(), rest)}={first}=={rest}@{self.domain}"
        stamp = _day_stamp(time.time() if now is None else now)
        digest = self._hash(stamp, domain.lower(), local)
        return f"SRS0={digest}={stamp}={domain}={local}@{self.domain}"

    def reverse(self, local: str, now: float | None = None) -> str:
        """The address an SRS local part stands for; SrsError if it is not a valid one."""
        kind = local[:5].upper()
        if kind == "SRS1=":
            digest, _, tail = local[5:].partition("=")
            first, sep, rest = tail.partition("==")
            if not (sep and first and rest) or not self._valid(digest, first.lower(), rest):
                raise SrsError("not an SRS address of ours")
            return f"SRS0={rest}@{first}"
        if kind != "SRS0=":
            raise SrsError("not an SRS address")
        parts = local[5:].split("=", 3)
        if len(parts) != 4 or not all(parts):
            raise SrsError("malformed SRS0 address")
        digest, stamp, domain, original = parts
        if not self._valid(digest, stamp.upper(), domain.lower(), original):
            raise SrsError("not an SRS address of ours")
        age = _age_in_days(stamp.upper(), time.time() if now is None else now)
        if age is None or age > self.max_age_days:
            raise SrsError("the SRS address has expired")
        return f"{original}@{domain}"

    def _hash(self, *fields: str) -> str:
        mac = hmac.new(self.secret, "\0".join(fields).lower().encode("utf-8"), hashlib.sha256)
        return base64.b32encode(mac.digest()).decode("ascii")[:HASH_LENGTH]

    def _valid(self, digest: str, *fields: str) -> bool:
        return hmac.compare_digest(digest.upper().encode("ascii", "replace"),
                                   self._hash(*fields).encode("ascii"))


def _day_stamp(now: float) -> str:
    day = int(now // _DAY) % 1024
    return _ALPHABET[day >> 5] + _ALPHABET[day & 31]


def _age_in_days(stamp: str, now: float) -> int | None:
    if len(stamp) != 2 or any(c not in _ALPHABET for c in stamp):
        return None
    made = (_ALPHABET.index(stamp[0]) << 5) | _ALPHABET.index(stamp[1])
    return (int(now // _DAY) - made) % 1024
