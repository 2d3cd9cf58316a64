"""`nmail dbsync ALL | ADDRESS` through nmail.cli.main.main, on every database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete

from cli_admin_support import Cli, make_cli
from nmail.db.tables import folders
from nmail.directory import Directory
from nmail.directory.model import Account
from nmail.mailstore.store import MailStore, NewMessage
from test_mailstore_support import message, trace

PW = "secret-pass1"


@pytest.fixture
def cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    return make_cli(tmp_path, db_url, capsys, monkeypatch)


def _deliver(cli: Cli, account: Account, subjects: list[str]) -> None:
    engine = cli.engine()
    store = MailStore(engine, cli.data_dir / "mail", "mail.example.com")
    try:
        store.store([NewMessage(account, "INBOX", trace(), message(s)) for s in subjects])
    finally:
        store.close()
        engine.dispose()


def _accounts(cli: Cli) -> tuple[Account, Account]:
    engine = cli.engine()
    try:
        d = Directory(engine)
        d.add_domain("example.com")
        a = d.add_account("example.com", "Ann", "ann", PW)
        b = d.add_account("example.com", "Ben", "ben", PW)
    finally:
        engine.dispose()
    return a, b


def _inbox_count(cli: Cli, account: Account) -> int:
    engine = cli.engine()
    store = MailStore(engine, cli.data_dir / "mail", "mail.example.com")
    try:
        return store.folder(account.id, "INBOX").message_count
    finally:
        store.close()
        engine.dispose()


def test_dbsync_all_rebuilds_a_lost_index(cli: Cli) -> None:
    ann, ben = _accounts(cli)
    _deliver(cli, ann, ["one", "two"])
    _deliver(cli, ben, ["three"])
    engine = cli.engine()
    with engine.begin() as conn:
        conn.execute(delete(folders))
    engine.dispose()
    out = cli.ok("dbsync", "ALL")
    assert "ann@example.com" in out and "ben@example.com" in out
    assert "dbsync: 2 accounts, 3 added, 0 removed, 0 kept, 0 renumbered" in out
    assert _inbox_count(cli, ann) == 2 and _inbox_count(cli, ben) == 1
    again = cli.ok("dbsync", "all")
    assert "dbsync: 2 accounts, 0 added, 0 removed, 3 kept, 0 renumbered" in again
    assert "ann@example.com" not in again  # only accounts with changes are listed


def test_dbsync_one_address(cli: Cli) -> None:
    ann, _ben = _accounts(cli)
    _deliver(cli, ann, ["one"])
    [path] = (cli.data_dir / "mail" / "example.com" / "ann" / "Maildir" / "new").iterdir()
    path.unlink()
    out = cli.ok("dbsync", "Ann@Example.COM")
    assert "ann@example.com" in out
    assert "dbsync: 1 account, 0 added, 1 removed, 0 kept, 0 renumbered" in out
    # The message was its conversation's last: its links went with its row.
    assert "conversations: the links of 1 with no message left dropped" in out
    assert _inbox_count(cli, ann) == 0
    assert "conversations:" not in cli.ok("dbsync", "ALL")  # nothing left to drop


def test_dbsync_says_which_flags_it_took_from_the_file_names(cli: Cli) -> None:
    ann, _ben = _accounts(cli)
    _deliver(cli, ann, ["one", "two"])
    maildir = cli.data_dir / "mail" / "example.com" / "ann" / "Maildir"
    # Another tool (a mail client over Dovecot, say) read one message and flagged it.
    first = sorted((maildir / "new").iterdir())[0]
    first.rename(maildir / "cur" / (first.name + ":2,FS"))
    out = cli.ok("dbsync", "ann@example.com")
    assert "dbsync: 1 account, 0 added, 0 removed, 2 kept, 0 renumbered, 1 flags corrected" in out
    again = cli.ok("dbsync", "ALL")
    assert "0 renumbered, 0 flags corrected" in again
    engine = cli.engine()
    store = MailStore(engine, cli.data_dir / "mail", "mail.example.com")
    try:
        assert store.folder(ann.id, "INBOX").unseen_count == 1
    finally:
        store.close()
        engine.dispose()


def test_dbsync_refuses_unknown_targets(cli: Cli) -> None:
    _accounts(cli)
    assert cli.refused("dbsync", "nobody@example.com") == (
        "nmail: error: no such account: nobody@example.com")
    assert "no such account" in cli.refused("dbsync", "not an address")
    result = cli("dbsync")
    assert result.code == 2 and "Traceback" not in result.err


def test_a_folder_name_found_on_disk_is_printed_literally(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rich markup in a user's folder name makes no hyperlink or style (issue 9 item 8)."""
    monkeypatch.setenv("FORCE_COLOR", "1")  # as on the admin's terminal
    ann, _ben = _accounts(cli)
    _deliver(cli, ann, ["one"])
    name = "[link=mailto:boss@evil][blink]Bills"  # no dot: Maildir++ nests at dots
    maildir = cli.data_dir / "mail" / "example.com" / "ann" / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / f".{name}" / sub).mkdir(parents=True)
    result = cli("dbsync", "ann@example.com")
    assert result.code == 0, result.err
    assert name in result.out
    assert "\x1b]8" not in result.out and "\x1b[5m" not in result.out
