"""Argon2 hashing and the password policy."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from nmail.directory.errors import WeakPassword
from nmail.directory.passwords import PasswordHashing, check_password_policy, fast_hashing


def test_default_hash_is_argon2id_and_verifies() -> None:
    hashing = PasswordHashing()
    stored = hashing.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert hashing.verify(stored, "correct horse")
    assert not hashing.verify(stored, "correct horsE")
    assert not hashing.verify(stored, "")
    assert not hashing.needs_rehash(stored)


def test_same_password_gets_different_salts() -> None:
    hashing = fast_hashing()
    assert hashing.hash("s3cret-pass") != hashing.hash("s3cret-pass")


def test_hash_with_other_parameters_needs_rehash_but_still_verifies() -> None:
    old = fast_hashing().hash("s3cret-pass")
    current = PasswordHashing()
    assert current.verify(old, "s3cret-pass")
    assert current.needs_rehash(old)


@pytest.mark.parametrize("stored", ["", "plaintext", "$argon2id$v=19$garbage", "$1$abc$def"])
def test_malformed_stored_hash_never_matches(stored: str) -> None:
    hashing = fast_hashing()
    assert not hashing.verify(stored, "plaintext")
    assert hashing.needs_rehash(stored)


def test_dummy_verification_runs_and_matches_nothing() -> None:
    hashing = fast_hashing()
    hashing.verify_dummy("anything")  # no exception, no result to leak
    hashing.verify_dummy("")


@pytest.mark.parametrize(
    ("password", "userid", "why"),
    [
        ("", "bob", "empty"),
        ("short1", "bob", "shorter than 8"),
        ("aaaaaaaaaa", "bob", "single character"),
        ("longusername", "longusername", "same as the user id"),
        ("LongUserName", "longusername", "same as the user id"),
        ("longusername@example.com", "longusername", "same as the user id"),
        ("pass\nword123", "bob", "control character"),
        ("x" * 1025 + "y", "bob", "longer than 1024"),
    ],
)
def test_policy_refuses_weak_passwords_and_says_why(password: str, userid: str, why: str) -> None:
    with pytest.raises(WeakPassword) as info:
        check_password_policy(password, userid)
    assert why in str(info.value)


@pytest.mark.parametrize(
    "password", ["abcdefgh", "비밀번호는길어요", "   spaced  ", "bob-password"]
)
def test_policy_accepts_reasonable_passwords(password: str) -> None:
    check_password_policy(password, "bob")


def test_hashing_accepts_custom_hasher() -> None:
    hashing = PasswordHashing(PasswordHasher(time_cost=1, memory_cost=2048, parallelism=1))
    stored = hashing.hash("abcdefgh")
    assert "m=2048,t=1,p=1" in stored
