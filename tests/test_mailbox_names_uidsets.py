"""Folder names (API <-> Maildir++ in modified UTF-7) and UID sets: the pure parts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmail.mailstore.folder_names import (
    check_name,
    decode_mutf7,
    disk_name,
    encode_mutf7,
    name_from_disk,
)
from nmail.mailstore.model import BadFolderName, BadUidSet
from nmail.mailstore.uidset import UidSet


def test_modified_utf7_matches_rfc_3501_and_dovecot() -> None:
    # RFC 3501 5.1.3's example: ~peter/mail/台北/日本語
    assert encode_mutf7("台北") == "&U,BTFw-"
    assert encode_mutf7("日本語") == "&ZeVnLIqe-"
    assert encode_mutf7("Tom & Jerry") == "Tom &- Jerry"
    assert decode_mutf7("&U,BTFw-") == "台北"
    # Python's UTF-7 codec as a reference: the same base64 of UTF-16 ("+...-" there).
    assert "거래처".encode("utf-7") == b"+rHC3mMyY-"
    assert disk_name("거래처/2026") == ".&rHC3mMyY-.2026"
    assert name_from_disk(".&rHC3mMyY-.2026") == "거래처/2026"
    assert disk_name("INBOX") == "" and disk_name("Sent") == ".Sent"


@given(st.text(min_size=1, max_size=40))
def test_modified_utf7_round_trips(text: str) -> None:
    try:
        encoded = encode_mutf7(text)
    except UnicodeEncodeError:  # lone surrogates cannot be names
        return
    assert encoded.isascii()
    assert decode_mutf7(encoded) == text


def test_bad_modified_utf7_is_refused() -> None:
    for bad in ("&", "&Jjo", "&AGE-", "&U,BTFw", "é", "&!!-"):
        with pytest.raises(ValueError):
            decode_mutf7(bad)
    assert name_from_disk(".&AGE-") is None  # "a" spelled the long way: not ours
    assert name_from_disk(".INBOX") is None
    assert name_from_disk("..x") is None and name_from_disk("cur") is None


def test_folder_names_are_checked() -> None:
    assert check_name("inbox") == "INBOX"
    assert check_name("Projects/2026/Q1") == "Projects/2026/Q1"
    assert check_name("거래처/2026") == "거래처/2026"
    bad = ["", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "v1.0", "a\0b", "a\nb",
           "a\x7fb", "a*", "a%", "a\\b", "x" * 256, "/".join(["d"] * 17), "INBOX/child",
           "é" * 200]
    for name in bad:
        with pytest.raises(BadFolderName):
            check_name(name)
    with pytest.raises(BadFolderName):
        check_name(None)  # type: ignore[arg-type]


def test_uid_sets_parse_imap_syntax() -> None:
    uids = UidSet.parse("1:5,7,9:*", uid_next=13)
    assert uids.ranges == ((1, 5), (7, 7), (9, 12))
    assert list(UidSet.parse("3,1,2", uid_next=4)) == [1, 2, 3]
    assert str(UidSet.parse("4:6,1:3", uid_next=10)) == "1:6"
    assert len(UidSet.parse("1:10000", uid_next=10001)) == 10000
    assert 7 in uids and 8 not in uids
    assert UidSet.of([5, 1, 2, 3]).ranges == ((1, 3), (5, 5))


def test_bad_uid_sets_say_what_is_wrong() -> None:
    cases = {
        "5:1": "reversed",
        "1:20": "past the last UID",
        "0": "bad number",
        "01": "bad number",
        "1,,2": "bad number",
        "a": "bad number",
        "1:": "bad number",
        "": "empty",
        "1;2": "bad number",
        "99999999999": "bad number",
    }
    for text, why in cases.items():
        with pytest.raises(BadUidSet, match=why):
            UidSet.parse(text, uid_next=11)
    with pytest.raises(BadUidSet, match="no UIDs yet"):
        UidSet.parse("*", uid_next=1)
    with pytest.raises(BadUidSet):
        UidSet.of([0])
    with pytest.raises(BadUidSet):
        UidSet.of_ranges([(3, 2)])
