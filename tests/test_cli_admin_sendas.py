"""`nmail user sendas add|del|list`: admin-granted sender addresses, on every database."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_admin_support import Cli, make_cli
from nmail.directory import Directory

PW = "secret-pass1"


@pytest.fixture
def cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    c = make_cli(tmp_path, db_url, capsys, monkeypatch)
    c.ok("domain", "add", "example.com")
    c.ok("domain", "add", "other.test")
    c.ok("user", "add", "example.com", "Hong", "hong", PW)
    return c


def sender_addresses(cli: Cli, login: str) -> frozenset[str]:
    engine = cli.engine()
    try:
        return Directory(engine).sender_addresses(login)
    finally:
        engine.dispose()


def test_grants_are_added_listed_and_withdrawn(cli: Cli) -> None:
    assert cli.ok("user", "sendas", "list", "hong@example.com") == ""
    out = cli.ok("user", "sendas", "add", "hong@example.com", "Info@Other.Test")
    assert out.strip() == "hong@example.com may send as info@other.test"
    cli.ok("user", "sendas", "add", "hong@example.com", "@EXAMPLE.com")
    assert cli.ok("user", "sendas", "list", "hong@example.com").split() == [
        "@example.com", "info@other.test"
    ]
    assert {"hong@example.com", "info@other.test", "@example.com"} <= sender_addresses(
        cli, "hong@example.com"
    )
    cli.ok("user", "sendas", "del", "hong@example.com", "info@other.test")
    assert "info@other.test" not in sender_addresses(cli, "hong@example.com")
    assert cli.ok("user", "sendas", "list", "hong@example.com").split() == ["@example.com"]


def test_bad_grants_are_refused_with_one_line(cli: Cli) -> None:
    cli.ok("user", "sendas", "add", "hong@example.com", "info@other.test")
    assert "already" in cli.refused("user", "sendas", "add", "hong@example.com", "INFO@other.test")
    assert "nobody" in cli.refused("user", "sendas", "add", "nobody@example.com", "a@other.test")
    assert cli.refused("user", "sendas", "add", "hong@example.com", "not an address")
    assert cli.refused("user", "sendas", "add", "hong@example.com", "@")
    assert "no send-as" in cli.refused("user", "sendas", "del", "hong@example.com", "x@other.test")
    assert cli.refused("user", "sendas", "list", "nobody@example.com")
    assert cli.ok("user", "sendas", "list", "hong@example.com").split() == ["info@other.test"]


def test_grants_go_with_the_account(cli: Cli) -> None:
    cli.ok("user", "sendas", "add", "hong@example.com", "info@other.test")
    cli.ok("user", "del", "hong@example.com")
    cli.ok("user", "add", "example.com", "Hong", "hong", PW)
    assert cli.ok("user", "sendas", "list", "hong@example.com") == ""
