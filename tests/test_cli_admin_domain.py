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
    added = cli.ok("domain", "add", "Example.COM").splitlines()
    assert added[0] == "added domain example.com"
    assert "nmail domain dns example.com" in added[1]
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
    assert "the mail files of 1 were moved to" in out
    assert not (cli.data_dir / "mail" / "example.com").exists()
    [moved] = (cli.data_dir / "mail" / ".purge").iterdir()
    assert moved.name.endswith("-bob@example.com") and (moved / "Maildir").is_dir()
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


def test_domain_add_creates_a_dkim_key_and_dns_prints_records(cli: Cli) -> None:
    import dkim

    from nmail.queue.dkim import DkimKeys, sign

    cli.ok("domain", "add", "example.com")
    out = cli.ok("domain", "dns", "example.com", "--ip", "203.0.113.5")
    lines = out.splitlines()
    assert "example.com.\t3600\tIN\tMX\t10 mail.example.com." in lines
    assert "mail.example.com.\t3600\tIN\tA\t203.0.113.5" in lines
    assert 'example.com.\t3600\tIN\tTXT\t"v=spf1 mx -all"' in lines
    assert any(line.startswith("_dmarc.example.com.") for line in lines)
    [dkim_line] = [line for line in lines if line.startswith("nmail._domainkey.example.com.")]
    # The printed record, reassembled from its 255-octet strings, verifies a signature.
    published = "".join(part for part in dkim_line.split('"')[1::2])
    engine = cli.engine()
    try:
        pem = DkimKeys(engine).get("example.com", "nmail")
    finally:
        engine.dispose()
    assert pem is not None
    message = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: x\r\n\r\nbody\r\n"
    signed = sign(message, "example.com", "nmail", pem) + message
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: published.encode())


def test_domain_dns_bad_input(cli: Cli) -> None:
    assert "not a hosted domain" in cli.refused("domain", "dns", "nothere.example")
    cli.ok("domain", "add", "example.com")
    assert "not an IP address" in cli.refused("domain", "dns", "example.com", "--ip", "1.2.3")
