"""Header values: RFC 2047 words, raw 8-bit bytes, attachment names."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmail.mime.headers import decode_filename, decode_header_value


def b_word(text: str, label: str, codec: str | None = None) -> str:
    data = text.encode(codec or label)
    return f"=?{label}?B?{base64.b64encode(data).decode()}?="


def q_word(text: str, label: str) -> str:
    data = binascii.b2a_qp(text.encode(label), header=True).decode()
    return f"=?{label}?Q?{data}?="


def test_utf8_base64() -> None:
    assert decode_header_value(b_word("한글 제목입니다", "UTF-8")) == "한글 제목입니다"


def test_utf8_quoted_printable_with_underscores() -> None:
    raw = "=?utf-8?Q?=ED=95=9C=EA=B8=80_=EC=A0=9C=EB=AA=A9?="
    assert decode_header_value(raw) == "한글 제목"
    assert decode_header_value(q_word("회의 안내 (월요일)", "utf-8")) == "회의 안내 (월요일)"


def test_euc_kr_base64() -> None:
    raw = "=?EUC-KR?B?" + base64.b64encode("주간 보고".encode("euc_kr")).decode() + "?="
    assert decode_header_value(raw) == "주간 보고"


def test_ks_c_5601_1987_with_cp949_only_syllables() -> None:
    raw = b_word("똠방각하 뷁 햏", "ks_c_5601-1987", "cp949")
    assert decode_header_value(raw) == "똠방각하 뷁 햏"
    encoded = binascii.b2a_qp("뷁".encode("cp949"), header=True).decode()
    raw_q = f"=?ks_c_5601-1987?Q?{encoded}?="
    assert decode_header_value(raw_q) == "뷁"


def test_raw_8bit_cp949_header() -> None:
    assert decode_header_value("[공지] 똠방각하 안내".encode("cp949")) == "[공지] 똠방각하 안내"


def test_raw_8bit_utf8_header() -> None:
    assert decode_header_value("회의록 공유".encode()) == "회의록 공유"


def test_raw_8bit_next_to_encoded_words() -> None:
    raw = "답장: ".encode("cp949") + b_word("확인", "utf-8").encode()
    assert decode_header_value(raw) == "답장: 확인"


@pytest.mark.parametrize("cut", range(1, 12))
def test_multibyte_character_split_across_base64_words(cut: int) -> None:
    data = "한글제목".encode()  # 12 bytes
    first = base64.b64encode(data[:cut]).decode()
    second = base64.b64encode(data[cut:]).decode()
    raw = f"=?UTF-8?B?{first}?=\r\n =?utf-8?B?{second}?="
    assert decode_header_value(raw) == "한글제목"


def test_cp949_character_split_across_quoted_printable_words() -> None:
    data = "똠뷁".encode("cp949")
    first = binascii.b2a_qp(data[:1], header=True).decode()
    second = binascii.b2a_qp(data[1:], header=True).decode()
    raw = f"=?euc-kr?Q?{first}?= =?EUC-KR?Q?{second}?="
    assert decode_header_value(raw) == "똠뷁"


def test_whitespace_between_adjacent_words_is_dropped_but_text_is_kept() -> None:
    raw = f"{b_word('가', 'utf-8')} \t {b_word('나', 'utf-8')} 다 {b_word('라', 'utf-8')}"
    assert decode_header_value(raw) == "가나 다 라"


def test_adjacent_words_in_different_charsets() -> None:
    raw = f"{b_word('가', 'utf-8')} {b_word('나', 'euc-kr', 'cp949')}"
    assert decode_header_value(raw) == "가나"


def test_folding_is_unfolded() -> None:
    assert decode_header_value(b"A long\r\n subject\r\n\tline") == "A long subject line"
    assert decode_header_value(b"LF\n folded") == "LF folded"


@pytest.mark.parametrize(
    "raw",
    [
        "=?utf-8?B?not closed",
        "=?utf-8?X?abc?=",
        "=?utf-8?B?a?=",  # one base64 character is no data
        "=??B?YWJj?=",
        "text =? other ?=",
    ],
)
def test_malformed_encoded_words_stay_as_text(raw: str) -> None:
    assert decode_header_value(raw) == raw


def test_unknown_charset_in_a_word_falls_back_to_what_fits() -> None:
    raw = "=?x-unknown?B?" + base64.b64encode("똠방".encode("cp949")).decode() + "?="
    assert decode_header_value(raw) == "똠방"


def test_encoded_word_glued_to_text_is_decoded() -> None:
    assert decode_header_value(f"Re:{b_word('확인', 'utf-8')}!") == "Re:확인!"


def test_controls_never_survive() -> None:
    raw = "=?utf-8?B?" + base64.b64encode(b"a\r\nBcc: x@y\x00z").decode() + "?="
    assert decode_header_value(raw) == "a  Bcc: x@y z"


def test_str_input_with_surrogate_escaped_bytes() -> None:
    raw = "제목".encode("cp949").decode("ascii", "surrogateescape")
    assert decode_header_value(raw) == "제목"


def test_plain_and_empty() -> None:
    assert decode_header_value(b"  Hello world  ") == "Hello world"
    assert decode_header_value(b"") == ""
    assert decode_header_value("") == ""


# Attachment names


def test_rfc2231_euc_kr_filename() -> None:
    assert decode_filename(b"attachment; filename*=EUC-KR''%B0%A1%B3%AA.txt") == "가나.txt"


def test_rfc2231_continuations_join_bytes_before_decoding() -> None:
    raw = ("attachment;\r\n filename*0*=UTF-8''%ED%95;\r\n filename*1*=%9C%EA%B8%80;\r\n"
           " filename*2=\"_final.hwp\"")
    assert decode_filename(raw) == "한글_final.hwp"


def test_rfc2231_continuations_out_of_order_and_cp949() -> None:
    data = "똠방 보고서.xlsx".encode("cp949")
    encoded = "".join(f"%{byte:02X}" for byte in data)
    raw = (f"attachment; filename*1*={encoded[12:]}; "
           f"filename*0*=ks_c_5601-1987'ko'{encoded[:12]}")
    assert decode_filename(raw) == "똠방 보고서.xlsx"


def test_rfc2231_beats_the_plain_parameter() -> None:
    raw = "attachment; filename=\"fallback.txt\"; filename*=UTF-8''%EC%9E%90%EB%A3%8C.txt"
    assert decode_filename(raw) == "자료.txt"


def test_rfc2047_inside_quotes() -> None:
    raw = f'attachment; filename="{b_word("뷁햏 결과.pdf", "ks_c_5601-1987", "cp949")}"'
    assert decode_filename(raw) == "뷁햏 결과.pdf"


def test_rfc2047_split_over_plain_continuations() -> None:
    word = b_word("견적서.pdf", "utf-8")
    raw = f'attachment; filename*0="{word[:20]}"; filename*1="{word[20:]}"'
    assert decode_filename(raw) == "견적서.pdf"


def test_raw_8bit_filenames() -> None:
    assert decode_filename(b'attachment; filename="' + "보고서.hwp".encode("cp949") + b'"') == (
        "보고서.hwp")
    assert decode_filename(b'attachment; filename="' + "보고서.hwp".encode() + b'"') == "보고서.hwp"


def test_content_type_name_is_the_fallback() -> None:
    assert decode_filename(None, b'application/pdf; name="report.pdf"') == "report.pdf"
    assert decode_filename(b"attachment", b"image/png; name=photo.png") == "photo.png"


def test_unquoted_names_with_spaces_and_missing_semicolons() -> None:
    assert decode_filename(b"attachment; filename=my report.doc") == "my report.doc"
    assert decode_filename(b'attachment; size=3 filename="a.txt"') == ""  # one junk value
    assert decode_filename(b'inline; name="x" filename="a.txt"') == "a.txt"


def test_directory_parts_are_dropped() -> None:
    raw = 'attachment; filename="C:\\\\Users\\\\kim\\\\보고서.hwp"'
    assert decode_filename(raw) == "보고서.hwp"
    assert decode_filename('attachment; filename="../../etc/passwd"') == "passwd"


@pytest.mark.parametrize("raw", [None, b"", b"attachment", b"inline; filename=", b";;;=;",
                                 b'attachment; filename*0*=', b"attachment; filename*99999*=x"])
def test_no_filename(raw: bytes | None) -> None:
    assert decode_filename(raw) == ""


@given(st.binary(max_size=300))
def test_header_decoding_never_raises_on_bytes(raw: bytes) -> None:
    assert "\r" not in decode_header_value(raw)
    assert isinstance(decode_filename(raw, raw), str)


@given(st.text(max_size=300))
def test_header_decoding_never_raises_on_text(raw: str) -> None:
    assert "\n" not in decode_header_value(raw)
    assert isinstance(decode_filename(raw, raw), str)


soup = st.lists(
    st.sampled_from(["=?", "?=", "?B?", "?Q?", "utf-8", "euc-kr", "*", "'", "''", "%", "%B0",
                     "filename", "name", "*0*", "*1", "=", ";", '"', "\\", " ", "\r\n ",
                     "6rCA", "=EA=B0", "_", "attachment"]),
    max_size=40,
).map("".join)


@given(soup)
def test_header_soup_never_raises(raw: str) -> None:
    assert isinstance(decode_header_value(raw), str)
    assert isinstance(decode_filename(raw), str)
