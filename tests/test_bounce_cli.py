"""`nmail bounce analyze` and `categories`: output, JSON, exit status, bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli_admin_support import Cli

CORPUS = Path(__file__).parent / "data" / "bounces"
BOUNCE = str(CORPUS / "no_such_user" / "10_postfix.eml")
NOT_BOUNCE = str(CORPUS / "not_bounces" / "ordinary.eml")


def test_a_bounce_is_explained_and_exits_0(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    result = Cli(tmp_path, capsys)("bounce", "analyze", BOUNCE)
    assert result.code == 0, result.err
    assert "recipient: nobody3@example.net (failed)" in result.out
    assert "category:  Recipient does not exist [no_such_user]" in result.out
    assert "550 5.1.1 No such user" in result.out
    assert "remote host: mx.example.net" in result.out
    korean = Cli(tmp_path, capsys)("bounce", "analyze", "--lang", "ko", BOUNCE)
    assert "받는 사람이 존재하지 않음" in korean.out
    assert not (tmp_path / "nmail.toml").exists()  # needs no data directory


def test_json_for_scripts_and_exit_2_when_a_file_is_not_a_bounce(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = Cli(tmp_path, capsys)("bounce", "analyze", "--json", BOUNCE, NOT_BOUNCE)
    assert result.code == 2
    data = json.loads(result.out)
    assert [item["bounce"] for item in data] == [True, False]
    assert data[0]["category"] == "no_such_user"
    assert data[0]["recipients"][0]["status"] == "5.1.1"
    assert data[0]["original_message_id"] == "case10.postfix@nmail-demo.kr"
    text = Cli(tmp_path, capsys)("bounce", "analyze", NOT_BOUNCE)
    assert text.code == 2 and "not a bounce" in text.out


def test_bad_files_get_one_line_each_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    prose = tmp_path / "notes.txt"
    prose.write_text("just some words\nand more\n")
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    cli = Cli(tmp_path, capsys)
    for bad, why in ((tmp_path / "missing.eml", "cannot read"), (binary, "not a mail message"),
                     (prose, "not a mail message"), (empty, "not a mail message"),
                     (tmp_path, "is a directory")):
        result = cli("bounce", "analyze", str(bad))
        assert result.code == 1
        assert why in result.error_line and str(bad) in result.error_line
    # One bad file does not stop the others.
    mixed = cli("bounce", "analyze", str(binary), BOUNCE)
    assert mixed.code == 1 and "no_such_user" in mixed.out


def test_categories_list_every_category(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(Cli(tmp_path, capsys).ok("bounce", "categories", "--json"))
    assert len(data) == 14 and data[-1]["id"] == "unknown"
    assert "421 4.3.1 You send too many messages." in data[6]["examples"]


def test_as_a_subprocess(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nmail", "bounce", "analyze", "--json", BOUNCE],
        capture_output=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["recipients"][0]["address"] == "nobody3@example.net"
    piped = subprocess.run(
        [sys.executable, "-m", "nmail", "bounce", "analyze", "--json", "-"],
        input=Path(BOUNCE).read_bytes(), capture_output=True, timeout=60, check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)[0]["file"] == "-"
    nothing = subprocess.run(
        [sys.executable, "-m", "nmail", "bounce", "analyze", "-"],
        input=b"", capture_output=True, timeout=60, check=False,
    )
    assert nothing.returncode == 1
    assert nothing.stderr.decode().strip() == "nmail: error: -: not a mail message (no header " \
        "fields at the top)"
