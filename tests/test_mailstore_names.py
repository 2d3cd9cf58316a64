"""Maildir names, flags and paths: the pure parts of the mail store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nmail.mailstore.layout import (
    UIDVALIDITY_FILE,
    LayoutError,
    UidState,
    disk_folder_names,
    folder_dir,
    maildir_path,
    read_uid_state,
    write_uid_state,
)
from nmail.mailstore.model import BadFolderName
from nmail.mailstore.names import (
    digest_base,
    disk_name,
    flags_to_letters,
    host_token,
    is_clean_base,
    letters_to_flags,
    new_base,
    normalize_flags,
    parse_disk_name,
)


def test_new_names_are_unique_and_clean() -> None:
    host = host_token("mx.example.com")
    names = {new_base(host) for _ in range(1000)}
    assert len(names) == 1000
    for name in names:
        assert is_clean_base(name) and name.endswith(".mx.example.com")
        assert f"P{os.getpid()}Q" in name


def test_host_token_keeps_names_short_and_printable() -> None:
    assert host_token("mx.example.com") == "mx.example.com"
    assert host_token("a/b:c,d") == "a\\057b\\072c\\054d"
    assert host_token("") == "localhost"
    long = host_token("x" * 200 + ".example.com")
    assert len(long) <= 32 and long != host_token("y" * 200 + ".example.com")
    assert is_clean_base(new_base(host_token("메일.한국")))


def test_parse_disk_name() -> None:
    p = parse_disk_name("1.M2P3Q4.host,U=17,S=2048:2,FS")
    assert (p.filename, p.base, p.uid, p.size, p.letters) == (
        "1.M2P3Q4.host,U=17,S=2048", "1.M2P3Q4.host", 17, 2048, "FS")
    dovecot = parse_disk_name("1.M2P3.host,S=100,W=104:2,")
    assert (dovecot.uid, dovecot.size, dovecot.letters) == (None, 100, "")
    for bad in ("x,U=,S=1", "x,U=-3", "x,U=abc", "x,U=0", "x,U=99999999999999999999",
                "x,U=１２"):
        assert parse_disk_name(bad).uid is None, bad
    assert parse_disk_name("plain").filename == "plain"
    assert parse_disk_name("x:1,experimental").letters == ""


def test_uidl_rules_for_foreign_names() -> None:
    assert is_clean_base("1500000000.M1P2.oldhost")
    for bad in ("", "a b", "a:b", "a,b", "a/b", "메일", "x" * 71, "tab\there"):
        assert not is_clean_base(bad), bad
    odd = "메일 001\udcff"
    digest = digest_base(odd)
    assert digest == digest_base(odd) and is_clean_base(digest) and digest != digest_base("x")


def test_flags_and_letters() -> None:
    flags = normalize_flags(frozenset({"\\seen", "\\FLAGGED", "\\Answered", "$Label1"}))
    assert flags == frozenset({"\\Seen", "\\Flagged", "\\Answered", "$Label1"})
    assert flags_to_letters(flags) == "FRS"
    assert letters_to_flags("DFRSTPx") == frozenset(
        {"\\Draft", "\\Flagged", "\\Answered", "\\Seen", "\\Deleted"})
    assert disk_name("b,U=1,S=2", "S", in_new=False) == "b,U=1,S=2:2,S"
    assert disk_name("b,U=1,S=2", "", in_new=True) == "b,U=1,S=2"
    for bad in ("\\Recent", "\\Nope", "", "a b", "a(b", 'a"b', "a]b", "é", "x" * 65):
        with pytest.raises(ValueError):
            normalize_flags(frozenset({bad}))


def test_paths_never_leave_the_mail_directory(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    assert maildir_path(root, "example.com", "ann") == root / "example.com" / "ann" / "Maildir"
    for domain, user in (("..", "ann"), ("example.com", ".."), ("a/b", "ann"), ("x", "a\0b"),
                         ("", "ann"), ("x", ""), (".hidden", "a"), ("x", "a\\b"),
                         ("x", "a\nb"), ("x", "a" * 256)):
        with pytest.raises(LayoutError):
            maildir_path(root, domain, user)
    maildir = root / "example.com" / "ann" / "Maildir"
    assert folder_dir(maildir, "INBOX") == maildir
    assert folder_dir(maildir, "Sent") == maildir / ".Sent"
    assert folder_dir(maildir, "Archive/2020") == maildir / ".Archive.2020"
    assert folder_dir(maildir, "inbox") == maildir
    for bad in ("..", "../x", "/a", "a/", ".x", "x.", "a..b", "", "a\0", "x" * 256, "a//b"):
        with pytest.raises(BadFolderName):
            folder_dir(maildir, bad)


def test_uid_state_file(tmp_path: Path) -> None:
    assert read_uid_state(tmp_path) is None
    write_uid_state(tmp_path, UidState(1234567890, 42))
    assert read_uid_state(tmp_path) == UidState(1234567890, 42)
    assert (tmp_path / UIDVALIDITY_FILE).read_text() == "1234567890 42\n"
    for garbage in ("", "abc", "0 5", "99999999999 1", "\xff\xfe"):
        (tmp_path / UIDVALIDITY_FILE).write_text(garbage, encoding="latin-1")
        assert read_uid_state(tmp_path) is None, garbage
    (tmp_path / UIDVALIDITY_FILE).write_text("77\n")
    assert read_uid_state(tmp_path) == UidState(77, 1)
    assert [p.name for p in tmp_path.iterdir()] == [UIDVALIDITY_FILE]


def test_disk_folder_names(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    assert disk_folder_names(maildir) == []
    for name in (".Sent/cur", ".Archive.2020/new", ".INBOX/cur", ".empty", "..x/cur",
                 "cur", ".notes.txt"):
        (maildir / name).mkdir(parents=True)
    (maildir / ".file").write_text("x")
    # .Archive.2020 is the folder Archive/2020 (Maildir++); .INBOX is no folder.
    assert disk_folder_names(maildir) == ["INBOX", "Archive/2020", "Sent"]
