"""Password hashing (Argon2id) and the policy every new password must meet."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nmail.directory.errors import WeakPassword

MIN_LENGTH = 8
# Far above any real password; stops a client from making us hash megabytes.
MAX_LENGTH = 1024


class PasswordHashing:
    """Argon2id hashes with one set of parameters; thread-safe.

    The defaults are argon2-cffi's (RFC 9106 low-memory profile). Tests may
    pass cheaper parameters: the algorithm is the same, only slower to crack.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        """A new salted hash of `password`."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """Whether `password` matches; a malformed stored hash never matches."""
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether the hash was made with other parameters than ours (rehash at login)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def verify_dummy(self, password: str) -> None:
        """Spend the time of one verification, for users that do not exist.

        Answering an unknown user at once would tell an attacker which user
        ids exist; verifying against a hash of the same cost hides it.
        """
        with self._lock:
            if self._dummy is None:
                self._dummy = self._hasher.hash("nmail dummy password for unknown users")
            dummy = self._dummy
        self.verify(dummy, password)


def fast_hashing() -> PasswordHashing:
    """Cheap Argon2id parameters, for test suites and benchmarks only."""
    return PasswordHashing(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def check_password_policy(password: str, userid: str) -> None:
    """Raise WeakPassword saying why, when `password` may not be used for `userid`."""
    if not password:
        raise WeakPassword("the password is empty")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password is shorter than {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password is longer than {MAX_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in password):
        # A line break or NUL cannot be typed into a POP3 PASS or SMTP AUTH line.
        raise WeakPassword("the password contains a control character")
    if len(set(password)) == 1:
        raise WeakPassword("the password repeats a single character")
    lowered = password.lower()
    local = userid.lower()
    # Also the full address: "bob@example.com" as bob's password.
    if lowered == local or lowered.startswith(local + "@"):
        raise WeakPassword("the password is the same as the user id")
