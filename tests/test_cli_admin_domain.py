"""`nmail domain ...` through nmail.cli.main.main, on every database."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_admin_support import Cli, make_cli

PW = "secret-pass1"


@pytest.fixture
def cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    return make_cli(tmp_path, db_url, capsys, monkeypatch)


def test_add_and_list(cli: Cli) -> None:
    assert "(no domains)" in cli.ok("domain", "list")
    assert cli.ok("domain", "add", "Example.COM").strip() == "added domain example.com"
    assert "한국.kr (xn--3e0b707e.kr)" in cli.ok("domain", "add", "한국.kr")
    listing = cli.ok("domain", "list")
    assert "example.com" in listing
    assert "한국.kr (xn--3e0b707e.kr)" in listing


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("bad..example.com", "empty label"),
        ("localhost", "at least one dot"),
        ("exa_mple.com", "letters, digits"),
        ("[10.0.0.1]", "address literals"),
        ("", "empty domain"),
    ],
)
def test_bad_domain_syntax(cli: Cli, name: str, why: str) -> None:
    before = cli.snapshot()
    assert why in cli.refused("domain", "add", name)
    assert cli.snapshot() == before


def test_duplicate_domain(cli: Cli) -> None:
    cli.ok("domain", "add", "example.com")
    before = cli.snapshot()
    assert "already exists" in cli.refused("domain", "add", "EXAMPLE.com")
    assert cli.snapshot() == before


def test_delete_needs_force_when_accounts_exist(cli: Cli) -> None:
    cli.ok("domain", "add", "example.com")
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    before = cli.snapshot()
    line = cli.refused("domain", "del", "example.com")
    assert "still has 1 account" in line and "--force" in line
    assert cli.snapshot() == before
    out = cli.ok("domain", "del", "example.com", "--force")
    assert "deleted domain example.com" in out
    assert "mail files are kept in" in out
    assert "(no domains)" in cli.ok("domain", "list")
    assert "no such domain" in cli.refused("domain", "del", "example.com")


def test_delete_empty_domain(cli: Cli) -> None:
    cli.ok("domain", "add", "한국.kr")
    assert "deleted domain 한국.kr" in cli.ok("domain", "del", "한국.KR")
    assert "(no domains)" in cli.ok("domain", "list")


def test_domain_aliases(cli: Cli) -> None:
    cli.ok("domain", "add", "example.com")
    cli.ok("domain", "add", "other.com")
    assert "(no domain aliases)" in cli.ok("domain", "alias", "list")
    out = cli.ok("domain", "alias", "add", "example.net", "example.com")
    assert "example.net now goes to example.com" in out
    listing = cli.ok("domain", "alias", "list")
    assert "example.net" in listing and "example.com" in listing
    assert "example.net" in cli.ok("domain", "list")
    before = cli.snapshot()
    assert "already an alias" in cli.refused("domain", "alias", "add", "example.net", "other.com")
    assert "hosted domain" in cli.refused("domain", "alias", "add", "other.com", "example.com")
    assert "no such domain" in cli.refused("domain", "alias", "add", "x.org", "missing.com")
    assert "empty label" in cli.refused("domain", "alias", "add", "x..org", "example.com")
    assert "already an alias" in cli.refused("domain", "add", "example.net")
    assert cli.snapshot() == before
    cli.ok("domain", "alias", "del", "example.net")
    assert "no such domain alias" in cli.refused("domain", "alias", "del", "example.net")


def test_catchall(cli: Cli) -> None:
    cli.ok("domain", "add", "example.com")
    cli.ok("user", "add", "example.com", "Bob", "bob", PW)
    out = cli.ok("domain", "catchall", "example.com", "bob")
    assert "goes to bob@example.com" in out
    assert "bob@example.com" in cli.ok("domain", "list")
    before = cli.snapshot()
    assert "no such account or alias" in cli.refused(
        "domain", "catchall", "example.com", "ghost@example.com"
    )
    assert "TARGET" in cli.refused("domain", "catchall", "example.com")
    assert "TARGET" in cli.refused("domain", "catchall", "example.com", "bob", "--clear")
    assert "no such domain" in cli.refused("domain", "catchall", "missing.com", "bob")
    assert cli.snapshot() == before
    assert "refused" in cli.ok("domain", "catchall", "example.com", "--clear")
    assert "bob@example.com" not in cli.ok("domain", "list")


def test_usage_errors_are_one_line(cli: Cli) -> None:
    result = cli("domain", "add")
    assert result.code == 2
    assert "DOMAIN" in result.error_line
    result = cli("domain", "frobnicate")
    assert result.code == 2
    result.error_line  # noqa: B018 - asserts a single clean line
