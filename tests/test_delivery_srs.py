"""SRS addresses: made with our key, read back only when ours and recent."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from nmail.delivery.srs import SrsError, SrsRewriter, load_secret

NOW = 1_800_000_000.0


@pytest.fixture
def srs(tmp_path: Path) -> SrsRewriter:
    return SrsRewriter(load_secret(tmp_path), "fwd.example.com")


def test_the_secret_is_private_and_kept(tmp_path: Path) -> None:
    first = load_secret(tmp_path)
    assert load_secret(tmp_path) == first and len(first) >= 32
    mode = stat.S_IMODE((tmp_path / "srs.secret").stat().st_mode)
    assert mode == 0o600
    (tmp_path / "srs.secret").write_text("short\n")
    with pytest.raises(ValueError, match="too short"):
        load_secret(tmp_path)


def test_srs0_round_trip_survives_lower_casing(srs: SrsRewriter) -> None:
    made = srs.forward("Alice.Smith@Example.org", now=NOW)
    local, _, domain = made.rpartition("@")
    assert local.startswith("SRS0=") and domain == "fwd.example.com"
    assert srs.reverse(local, now=NOW + 86400) == "Alice.Smith@Example.org"
    assert srs.reverse(local.lower(), now=NOW).lower() == "alice.smith@example.org"


def test_an_srs0_of_another_forwarder_becomes_srs1(srs: SrsRewriter) -> None:
    theirs = "SRS0=abcd=XY=example.org=alice@first.example"
    made = srs.forward(theirs, now=NOW)
    assert made.startswith("SRS1=") and "=first.example==abcd=XY=example.org=alice@" in made
    assert srs.reverse(made.rpartition("@")[0], now=NOW) == theirs
    # and an SRS1 of someone else keeps its first forwarder
    again = srs.forward(made.replace("@fwd.example.com", "@second.example"), now=NOW)
    assert srs.reverse(again.rpartition("@")[0], now=NOW) == theirs
    # our own SRS addresses are not wrapped again
    assert srs.forward(made, now=NOW) == made
    assert srs.forward("", now=NOW) == ""


@pytest.mark.parametrize(
    "tamper",
    [
        lambda a: a.replace("=alice", "=mallory"),
        lambda a: a.replace("example.org", "evil.org"),
        lambda a: "SRS0=" + a[5:].split("=", 1)[1],  # hash dropped
        lambda a: "SRS2" + a[4:],
        lambda a: "SRS0=",
    ],
)
def test_tampered_addresses_are_refused(srs: SrsRewriter, tamper: object) -> None:
    local = srs.forward("alice@example.org", now=NOW).rpartition("@")[0]
    with pytest.raises(SrsError):
        srs.reverse(tamper(local), now=NOW)  # type: ignore[operator]


def test_another_key_and_old_addresses_are_refused(srs: SrsRewriter, tmp_path: Path) -> None:
    local = srs.forward("alice@example.org", now=NOW).rpartition("@")[0]
    (tmp_path / "other").mkdir()
    other = SrsRewriter(load_secret(tmp_path / "other"), "fwd.example.com")
    with pytest.raises(SrsError, match="ours"):
        other.reverse(local, now=NOW)
    assert srs.reverse(local, now=NOW + 21 * 86400) == "alice@example.org"
    with pytest.raises(SrsError, match="expired"):
        srs.reverse(local, now=NOW + 22 * 86400)
