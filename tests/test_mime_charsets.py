"""Charset labels and decoding of (often mislabelled) Korean bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmail.mime.charsets import (
    decode_bytes,
    decode_bytes_with_codec,
    looks_korean,
    normalize_charset,
)

CP949_ONLY = "똠 뷁 햏"  # not in KS X 1001: Python's euc_kr cannot decode them
KOREAN = "안녕하세요, 똠방각하 님. 뷁! 햏햏 메일 테스트입니다."
KOREAN_LABELS = [
    "euc-kr", "EUC-KR", "euc_kr", "ks_c_5601-1987", "KS_C_5601-1987", "ks_c_5601",
    "ksc5601", "x-windows-949", "windows-949", "cp949", "CP949", "uhc", '"euc-kr"',
    "ks_c_5601-1987*ko",
]

hangul = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
korean_text = st.text(alphabet=st.one_of(hangul, st.sampled_from(" .,!?0123456789abcXYZ\n")),
                      min_size=1, max_size=200)


@pytest.mark.parametrize("label", KOREAN_LABELS)
def test_every_korean_label_is_cp949(label: str) -> None:
    assert normalize_charset(label) == "cp949"


@pytest.mark.parametrize("label", KOREAN_LABELS)
def test_cp949_only_syllables_decode_under_every_korean_label(label: str) -> None:
    data = KOREAN.encode("cp949")
    with pytest.raises(UnicodeDecodeError):
        data.decode("euc_kr")  # why the mapping exists
    assert decode_bytes(data, label) == KOREAN


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf-8", "utf-8"), ("UTF8", "utf-8"), ("us-ascii", "ascii"), ("iso-8859-1", "iso8859-1"),
        ("iso-2022-kr", "iso2022_kr"), ("ISO-2022-KR", "iso2022_kr"), ("gb2312", "gbk"),
        ("shift_jis", "cp932"), ("utf-8*ko", "utf-8"), (b"utf-8", "utf-8"),
    ],
)
def test_normalize_known_labels(label: str | bytes, codec: str) -> None:
    assert normalize_charset(label) == codec


@pytest.mark.parametrize(
    "label",
    [None, "", "   ", "x-unknown", "unknown-8bit", "zlib", "rot13", "base64", "hex",
     "unicode_escape", "raw-unicode-escape", "idna", "undefined", "a" * 300, "utf-8'\x00"],
)
def test_labels_that_are_not_charsets_normalize_to_empty(label: str | None) -> None:
    assert normalize_charset(label) == ""


def test_iso_2022_kr_declared_and_undeclared() -> None:
    data = KOREAN.replace("똠", "").replace("뷁", "").replace("햏", "").encode("iso2022_kr")
    assert data.isascii()
    expected = data.decode("iso2022_kr")
    assert decode_bytes(data, "iso-2022-kr") == expected
    assert decode_bytes(data, None) == expected  # recognised by its ESC $ ) C designator
    # An explicit ASCII label on 7-bit bytes stands: nothing proves it wrong.
    assert decode_bytes(data, "us-ascii") != expected


@pytest.mark.parametrize("label", [None, "us-ascii", "iso-8859-1", "latin1", "windows-1252",
                                   "x-unknown", "utf-8", "euc-kr"])
def test_utf8_bytes_decode_as_korean_whatever_the_label(label: str | None) -> None:
    assert decode_bytes(KOREAN.encode("utf-8"), label) == KOREAN


@pytest.mark.parametrize("label", [None, "us-ascii", "iso-8859-1", "x-unknown", "utf-8",
                                   "ks_c_5601-1987", "iso-2022-kr", "utf-16"])
def test_cp949_bytes_decode_as_korean_whatever_the_label(label: str | None) -> None:
    assert decode_bytes(KOREAN.encode("cp949"), label) == KOREAN


@pytest.mark.parametrize("text", ["Änderung der Bedingungen", "Grüße aus Köln", "naïve café",
                                  "Ärger", "Ça va? Très bien."])
def test_real_latin1_stays_latin1_under_a_latin1_label(text: str) -> None:
    assert decode_bytes(text.encode("latin-1"), "iso-8859-1") == text


def test_windows_1252_punctuation_under_a_latin1_label() -> None:
    data = "“quoted” – dash …".encode("cp1252")
    assert decode_bytes(data, "iso-8859-1") == "“quoted” – dash …"


def test_latin1_bytes_that_fit_no_multibyte_codec_fall_back_to_latin() -> None:
    text = "Grüße, schöne Größe"
    assert decode_bytes(text.encode("latin-1"), None) == text
    assert decode_bytes(text.encode("latin-1"), "utf-8") == text


def test_one_bad_byte_in_korean_utf8_keeps_the_korean() -> None:
    data = KOREAN.encode("utf-8")
    damaged = data[:10] + b"\xff" + data[10:]
    text = decode_bytes(damaged, "utf-8")
    assert "메일 테스트입니다" in text
    assert "\ufffd" in text


def test_one_bad_byte_in_cp949_keeps_the_korean() -> None:
    data = KOREAN.encode("cp949")
    damaged = data[:12] + b"\xff" + data[12:]
    text = decode_bytes(damaged, "euc-kr")
    assert "메일 테스트입니다" in text


@pytest.mark.parametrize("codec", ["utf-8", "cp949"])
def test_partial_decoding_drops_a_character_cut_in_half(codec: str) -> None:
    data = KOREAN.encode(codec)
    label = "utf-8" if codec == "utf-8" else "euc-kr"
    for cut in range(1, len(data)):
        text = decode_bytes(data[:cut], label, partial=True)
        assert KOREAN.startswith(text), (cut, text)
        assert len(KOREAN) - len(text) <= len(KOREAN[len(text):])


def test_utf16_label_on_ascii_is_a_mislabel() -> None:
    assert decode_bytes(b"Hello there", "utf-16") == "Hello there"
    assert decode_bytes("안녕".encode("utf-16"), "utf-16") == "안녕"


def test_reports_the_codec_used() -> None:
    assert decode_bytes_with_codec(KOREAN.encode("cp949"), "iso-8859-1") == (KOREAN, "cp949")
    assert decode_bytes_with_codec(b"plain", "utf-8") == ("plain", "ascii")


def test_looks_korean() -> None:
    assert looks_korean(KOREAN)
    assert looks_korean("똠방각하")  # one CP949-only syllable among common ones
    assert not looks_korean("plain ascii")
    assert not looks_korean("훞derung Gr廻e")  # Latin-1 read as CP949


@given(korean_text)
def test_korean_roundtrips_through_cp949_labels(text: str) -> None:
    assert decode_bytes(text.encode("cp949"), "ks_c_5601-1987") == text
    assert decode_bytes(text.encode("cp949"), "euc-kr") == text


@given(korean_text)
def test_korean_utf8_mislabelled_as_euc_kr(text: str) -> None:
    assert decode_bytes(text.encode("utf-8"), "euc-kr") == text


@given(korean_text, st.sampled_from([None, "us-ascii", "iso-8859-1", "x-unknown"]))
def test_cp949_korean_unlabelled_or_mislabelled(text: str, label: str | None) -> None:
    data = text.encode("cp949")
    try:
        data.decode("utf-8")
        return  # a word or two of CP949 can be valid UTF-8: then it reads as UTF-8
    except UnicodeDecodeError:
        pass
    if label == "iso-8859-1" and not looks_korean(text):
        return  # too little Korean to overrule a Latin-1 label
    assert decode_bytes(data, label) == text


@given(st.text(max_size=300))
def test_any_utf8_text_roundtrips_unlabelled(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return  # lone surrogates are not UTF-8
    assert decode_bytes(data, None) == text


@given(st.binary(max_size=600),
       st.sampled_from([None, "", "utf-8", "euc-kr", "iso-2022-kr", "utf-16", "utf-7", "us-ascii",
                        "iso-8859-1", "gb2312", "x-junk", "hz", "johab", "utf-32"]),
       st.booleans())
def test_decode_bytes_never_raises(data: bytes, label: str | None, partial: bool) -> None:
    assert isinstance(decode_bytes(data, label, partial=partial), str)
