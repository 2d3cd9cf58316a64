"""Charset labels to Python codecs, and decoding bytes that are often mislabelled.

Korean mail is the reason this module exists: `euc-kr` and Outlook's
`ks_c_5601-1987` are really CP949 (Python's `euc_kr` fails on CP949-only
syllables such as 똠, 뷁, 햏), old mail uses ISO-2022-KR, and a good share of
messages carry no label or a wrong one (`us-ascii`, `iso-8859-1`) on Korean
bytes. `decode_bytes` never raises and never returns mojibake where some
codec reads the bytes cleanly.
"""

from __future__ import annotations

import codecs
import functools
import re

# Every label of the EUC-KR family: the senders mean CP949 (its superset).
_KOREAN_LABELS = frozenset({
    "euc-kr", "euc_kr", "euckr", "x-euc-kr", "ks_c_5601-1987", "ks_c_5601",
    "ks_c-5601", "ks_c-5601-1987", "ksc5601", "ksc_5601", "ks_x_1001", "ksx1001",
    "ks_x-1001", "korean", "x-windows-949", "windows-949", "cp949", "ms949",
    "uhc", "x-uhc", "csksc56011987", "iso-ir-149",
})

# Labels Python lacks or reads too narrowly, mapped to the codec mailers mean.
_SUPERSETS = {
    "gb2312": "gbk", "x-gbk": "gbk", "csgb2312": "gbk", "chinese": "gbk",
    "big5": "big5hkscs", "x-x-big5": "big5hkscs",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "ms_kanji": "cp932", "windows-31j": "cp932",
    "iso-8859-8-i": "iso8859-8", "iso-8859-6-i": "iso8859-6",
    "tis-620": "cp874", "windows-874": "cp874", "iso-8859-11": "cp874",
    "x-mac-roman": "mac-roman", "utf8mb4": "utf-8", "x-unicode20utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
}

# Codecs Python knows that are not charsets a message can be written in.
_NOT_CHARSETS = frozenset({
    "unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode",
    "utf-8-sig", "unicode-internal", "mbcs", "oem", "cp65001",
})

# Codecs whose bytes may all be ASCII; the ASCII shortcut must not skip them.
_SEVEN_BIT = frozenset({"iso2022_kr", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2",
                        "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_ext", "utf-7", "hz"})
_WIDE = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})

# Labels too often stuck on bytes of another charset to be believed when the
# bytes are not plain ASCII.
_WEAK = frozenset({"ascii", "iso8859-1", "cp1252"})

_ISO2022_KR_DESIGNATOR = b"\x1b$)C"
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")
_MAX_SNIFF = 4000  # characters looked at when judging whether a reading is Korean


def normalize_charset(name: str | bytes | None) -> str:
    """Python codec name for a MIME charset label ("" when unknown or empty).

    The EUC-KR family maps to "cp949"; RFC 2231 language suffixes ("utf-8*ko")
    and quotes are ignored.
    """
    if not name:
        return ""
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return _lookup(name) if len(name) <= 64 else ""


@functools.lru_cache(maxsize=512)
def _lookup(name: str) -> str:
    label = name.strip().strip("\"'").strip().lower().split("*", 1)[0]
    if label in _KOREAN_LABELS:
        return "cp949"
    label = _SUPERSETS.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return ""
    codec = info.name
    # zlib, base64, rot13...: codecs, but not from bytes to text.
    if not getattr(info, "_is_text_encoding", True) or codec in _NOT_CHARSETS:
        return ""
    if codec == "euc_kr":  # aliases of euc_kr that are not in the table above
        return "cp949"
    return codec


def decode_bytes(data: bytes, declared: str | None, *, partial: bool = False) -> str:
    """Decode `data` labelled `declared`, falling back to what actually fits.

    Order: the declared codec, UTF-8, CP949, a reading with a few damaged
    characters, then Windows-1252/Latin-1. An ASCII or Latin-1 label on bytes
    that are valid UTF-8, or CP949 that reads as Korean, gives way to those.
    With `partial`, a multibyte sequence cut off at the end (a truncated
    preview) is dropped instead of failing.
    """
    return decode_bytes_with_codec(data, declared, partial=partial)[0]


def decode_bytes_with_codec(
    data: bytes, declared: str | None, *, partial: bool = False
) -> tuple[str, str]:
    """Like `decode_bytes`, also returning the codec that was used."""
    codec = normalize_charset(declared)
    if codec in _WIDE:
        # A UTF-16 label on ASCII bytes is a mislabel: reading them as UTF-16 "works".
        if b"\x00" in data or not data.isascii():
            text = _attempt(data, codec, partial)
            if text is not None:
                return text, codec
        codec = ""
    elif codec in _SEVEN_BIT:
        text = _attempt(data, codec, partial)
        if text is not None:
            return text, codec
        codec = ""
    if data.isascii():
        if not codec and _ISO2022_KR_DESIGNATOR in data:
            text = _attempt(data, "iso2022_kr", partial)
            if text is not None:
                return text, "iso2022_kr"
        return data.decode("ascii"), "ascii"

    trusted = codec if codec not in _WEAK else ""
    if trusted:
        text = _attempt(data, trusted, partial)
        if text is not None:
            if trusted == "cp949":
                # Korean UTF-8 mislabelled as EUC-KR can also read as CP949: hanja
                # and odd syllables, as every UTF-8 Hangul lead byte is a hanja
                # lead in CP949. Real CP949 is almost never valid UTF-8 (so this
                # is cheap); when both fit, the more Hangul reading wins, the
                # label on a tie.
                utf8 = _attempt_utf8(data, partial)
                if utf8 is not None and _hangul_share(utf8) > _hangul_share(text):
                    return utf8, "utf-8"
            return text, trusted
    if trusted != "utf-8":
        text = _attempt_utf8(data, partial)
        if text is not None:
            # Valid UTF-8 is UTF-8. (A word or two of CP949 can be valid UTF-8
            # as well; longer Korean text practically never is.)
            return text, "utf-8"
    if trusted != "cp949":
        text = _attempt(data, "cp949", partial)
        # Unlabelled 8-bit bytes, or a us-ascii label proven wrong, are most
        # likely Korean here; a Latin-1 label is believed unless the CP949
        # reading looks like real Korean.
        if text is not None and (codec in ("", "ascii") or looks_korean(text)):
            return text, "cp949"
    best = _least_damaged(data, trusted, partial)
    if best is not None:
        return best
    text = _attempt(data, "cp1252", partial)
    if text is not None:
        return text, "cp1252"
    return data.decode("latin-1"), "iso8859-1"


def looks_korean(text: str) -> bool:
    """True when `text` reads as Korean: mostly KS X 1001 characters, some Hangul.

    Latin-1 text read as CP949 produces the rarer UHC syllables (a high byte
    followed by an ASCII letter); real Korean is mostly KS X 1001.
    """
    sample = text[:_MAX_SNIFF]
    non_ascii = len(_NON_ASCII.findall(sample))
    if non_ascii == 0:
        return False
    every, hangul = _ksx1001_patterns()
    common = len(every.findall(sample))
    return common * 2 >= non_ascii and hangul.search(sample) is not None


def _hangul_share(text: str) -> float:
    """Hangul syllables as a share of the non-ASCII characters of `text`."""
    sample = text[:_MAX_SNIFF]
    non_ascii = len(_NON_ASCII.findall(sample))
    return len(_HANGUL_SYLLABLE.findall(sample)) / non_ascii if non_ascii else 0.0


@functools.cache
def _ksx1001_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Character classes: all of KS X 1001 (what EUC-KR encodes), and its Hangul."""
    every: list[str] = []
    hangul: list[str] = []
    for lead in range(0xA1, 0xFF):
        for trail in range(0xA1, 0xFF):
            try:
                char = bytes((lead, trail)).decode("euc_kr")
            except UnicodeDecodeError:
                continue
            every.append(char)
            if lead == 0xA4 or 0xB0 <= lead <= 0xC8:  # compatibility jamo, syllables
                hangul.append(char)
    return (re.compile("[" + "".join(map(re.escape, every)) + "]"),
            re.compile("[" + "".join(map(re.escape, hangul)) + "]"))


def _attempt(data: bytes, codec: str, partial: bool) -> str | None:
    """Strict decode; None when the bytes do not fit the codec."""
    try:
        if partial:
            if codec == "utf-8":  # what a fresh incremental decoder does, minus its set-up
                return codecs.utf_8_decode(data, "strict", False)[0]
            decoder = codecs.getincrementaldecoder(codec)()
            return str(decoder.decode(data, final=False))
        return data.decode(codec)
    except (LookupError, ValueError, TypeError):
        return None


def _attempt_utf8(data: bytes, partial: bool) -> str | None:
    """Strict UTF-8 decode of 8-bit `data`; None when the bytes are not UTF-8."""
    # CP949 or Latin-1 text usually fails at its first 8-bit byte, which cannot
    # start a UTF-8 character: seeing that is cheaper than a failed decode.
    first = _HIGH_BYTE.search(data)
    if first is not None and not 0xC2 <= data[first.start()] <= 0xF4:
        return None
    return _attempt(data, "utf-8", partial)


def _least_damaged(data: bytes, trusted: str, partial: bool) -> tuple[str, str] | None:
    """The reading with fewest replacement characters, if the damage is small.

    Korean UTF-8 or CP949 with a stray bad byte should still read as Korean,
    not turn into Latin-1 mojibake as a whole.
    """
    high = len(_HIGH_BYTE.findall(data, 0, _MAX_SNIFF * 3))
    best: tuple[str, str] | None = None
    best_damage = high // 8 + 1  # at most one damaged character per 8 high bytes
    for codec in dict.fromkeys(c for c in (trusted, "utf-8", "cp949") if c):
        try:
            if partial:
                decoder = codecs.getincrementaldecoder(codec)("replace")
                text = str(decoder.decode(data, final=False))
            else:
                text = data.decode(codec, "replace")
        except (LookupError, ValueError, TypeError):
            continue
        damage = text.count("\ufffd")
        if damage < best_damage and (codec != "cp949" or looks_korean(text)):
            best, best_damage = (text, codec), damage
    return best
