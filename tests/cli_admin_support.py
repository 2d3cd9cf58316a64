"""Running the nmail admin commands in-process against a throw-away data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.cli.main import main
from nmail.db.engine import make_engine
from nmail.directory import Directory


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The single stderr line of a refused command (asserts there is exactly one)."""
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {self.err!r}"
        assert lines[0].startswith("nmail: error: "), lines[0]
        assert "Traceback" not in self.err
        return lines[0]




def write_config(data_dir: Path, db_url: str) -> None:
    """The minimal nmail.toml the admin commands need."""
    (data_dir / "nmail.toml").write_text(
        f'[server]\nhostname = "mail.example.com"\n[database]\nurl = "{db_url}"\n',
        encoding="utf-8",
    )


class Cli:
    """`nmail --data DIR ...` in this process, with output captured."""

    def __init__(self, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.data_dir = data_dir
        self._capsys = capsys

    def __call__(self, *args: str) -> Result:
        self._capsys.readouterr()
        try:
            code = main(["--data", str(self.data_dir), *args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *args: str) -> str:
        """Run a command that must succeed; its stdout."""
        result = self(*args)
        assert result.code == 0, f"{args}: exit {result.code}, stderr {result.err!r}"
        assert result.err == "", result.err
        return result.out

    def refused(self, *args: str) -> str:
        """Run a command that must fail with one clear line; that line."""
        result = self(*args)
        assert result.code != 0, f"{args} succeeded: {result.out!r}"
        return result.error_line

    def engine(self) -> Engine:
        text = (self.data_dir / "nmail.toml").read_text(encoding="utf-8")
        url = text.split('url = "', 1)[1].split('"', 1)[0]
        return make_engine(url)

    def snapshot(self) -> tuple[object, ...]:
        """Everything the admin commands can change, to prove a refusal changed nothing."""
        engine = self.engine()
        try:
            d = Directory(engine)
            return (
                d.list_domains(),
                d.list_domain_aliases(),
                d.list_accounts(),
                d.list_aliases(),
                d.relay_networks(),
            )
        finally:
            engine.dispose()


def make_cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """A data directory on `db_url` and a runner for it (each test file's `cli` fixture)."""
    # Wide enough that rich tables never wrap an address.
    monkeypatch.setenv("COLUMNS", "200")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_config(data_dir, db_url)
    return Cli(data_dir, capsys)
