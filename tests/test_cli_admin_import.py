"""`nmail user import FILE.csv`: good and bad lines, encodings, bad headers."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from cli_admin_support import Cli, make_cli
from nmail.directory import AuthStatus, Directory


@pytest.fixture
def cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    c = make_cli(tmp_path, db_url, capsys, monkeypatch)
    c.ok("domain", "add", "example.com")
    c.ok("domain", "add", "한국.kr")
    return c


def accounts(cli: Cli) -> dict[str, tuple[str, bool, int]]:
    engine = cli.engine()
    try:
        return {
            a.address: (a.display_name, a.is_admin, a.quota_bytes)
            for a in Directory(engine).list_accounts()
        }
    finally:
        engine.dispose()


def test_good_and_bad_lines(cli: Cli, tmp_path: Path) -> None:
    csv_file = tmp_path / "users.csv"
    csv_file.write_bytes(codecs.BOM_UTF8 + (
        "domain,name,userid,password,admin,quota\n"
        "example.com,Bob Smith,bob,secret-pass1,ADMIN,1G\n"   # 2 ok
        "example.com,Short,shorty,abc,,\n"                      # 3 weak password
        "missing.com,Nobody,nobody,secret-pass1,,\n"            # 4 unknown domain
        "한국.kr,홍길동,hong,비밀번호입니다만,,500M\n"          # 5 ok
        "example.com,Bob Again,bob,secret-pass1,,\n"            # 6 duplicate
        "example.com,Odd,odd,secret-pass1,maybe,\n"             # 7 bad admin column
        "example.com,Few,few\n"                                 # 8 too few fields
        "\n"
        "example.com,Ann,ann,secret-pass2,no,0\n"               # 10 ok
    ).encode())
    result = cli("user", "import", str(csv_file))
    assert result.code == 1
    assert result.err.startswith("nmail: error: ")
    assert "5 of 8 lines failed" in result.error_line
    report = result.out
    assert "read" in report and "UTF-8" in report
    assert "line 3: the password is shorter than 8 characters" in report
    assert "line 4: no such domain: missing.com" in report
    assert "line 6: account bob@example.com already exists" in report
    assert "line 7: admin column" in report
    assert "line 8: expected 6 fields, found 3" in report
    assert "imported 3, failed 5" in report
    for good in ("line 2:", "line 5:", "line 10:"):
        assert good not in report
    assert accounts(cli) == {
        "bob@example.com": ("Bob Smith", True, 1 << 30),
        "hong@xn--3e0b707e.kr": ("홍길동", False, 500 << 20),
        "ann@example.com": ("Ann", False, 0),
    }


def test_cp949_file_from_korean_excel(cli: Cli, tmp_path: Path) -> None:
    csv_file = tmp_path / "excel.csv"
    content = (
        "domain,name,userid,password\r\n"
        "example.com,김똠방,kim,비밀번호1234\r\n"
        "한국.kr,이순신,lee,거북선거북선거북선\r\n"
    )
    csv_file.write_bytes(content.encode("cp949"))
    out = cli.ok("user", "import", str(csv_file))
    assert "CP949" in out
    assert "imported 2, failed 0" in out
    found = accounts(cli)
    assert found["kim@example.com"][0] == "김똠방"
    assert found["lee@xn--3e0b707e.kr"][0] == "이순신"
    engine = cli.engine()
    try:
        assert Directory(engine).authenticate("kim@example.com", "비밀번호1234").status is (
            AuthStatus.OK
        )
    finally:
        engine.dispose()


def test_imported_accounts_get_mailboxes(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("nmail.mailstore.store")
    csv_file = tmp_path / "one.csv"
    csv_file.write_text("domain,name,userid,password\nexample.com,Bob,bob,secret-pass1\n")
    cli.ok("user", "import", str(csv_file))
    assert (cli.data_dir / "mail" / "example.com" / "bob" / "Maildir").is_dir()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"domain,name,user,password\nexample.com,B,b,secret-pass1\n", "bad CSV header"),
        (b"domain,name,userid\nexample.com,B,b\n", "missing column 'password'"),
        (b"", "empty"),
        (b"\xff\xfe\x00\xd8garbage", "not text"),
    ],
)
def test_bad_file_changes_nothing(cli: Cli, tmp_path: Path, content: bytes, why: str) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_bytes(content)
    before = cli.snapshot()
    assert why in cli.refused("user", "import", str(csv_file))
    assert cli.snapshot() == before


def test_missing_file(cli: Cli, tmp_path: Path) -> None:
    assert "cannot read" in cli.refused("user", "import", str(tmp_path / "nope.csv"))
